//! A block of canonical event lines to columns, for the replay's loader (`orderbank.replay.decode`).
//!
//! The loader's pure-Python fast path decodes a block with msgspec into one Struct per event, then reads
//! each column off those objects: most of a load's time. `read_block` does both in one pass with no Python
//! object per event. Every line must be one JSON object in the canonical shape of an order event
//! (`orderbank.replay.shapes`): the keys of its type, each once, and no other; no escape in any string;
//! the shapes' types, lengths, ranges and literals; every amount in one currency of three capital letters.
//! What the loader checks with numpy on either path (UUIDs, timestamps, order ids, VINs) is left to it:
//! this hands over their text. A block with any line outside that shape is refused whole (`None`) and the
//! loader reads it the pure-Python way, so whatever this accepts, that path would have read to the same
//! values. Refusing is always safe; accepting is what the tests hold to account.

use std::collections::HashMap;
use std::fmt;

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// The event types read here, in the order of their codes (`kind`); the loader maps them to its own.
const TYPES: [&str; 7] = [
    "OrderPlaced",
    "PaymentDemanded",
    "PaymentReceived",
    "OrderCancelled",
    "RefundPaid",
    "VehicleDelivered",
    "OrderTransferred",
];
const PLACED: u8 = 0;
const DEMANDED: u8 = 1;
const DELIVERED: u8 = 5;
const CHANNELS: [&str; 4] = ["app", "web", "store", "dealer"];
const PURPOSES: [&str; 3] = ["deposit", "balance", "fee"];
const REASONS: [&str; 4] = ["customer", "balance_not_paid", "maker", "fraud"];
const TEXT_CHARS: usize = 64;
const ID_CHARS: usize = 36;
const VIN_CHARS: usize = 17;
const TIME_CHARS: usize = 27; // 2025-06-26T14:00:00.017130Z
const WHOLE_SECOND_CHARS: usize = 20; // 2025-06-26T14:00:00Z
const MAX_TRIM_RANK: u64 = 100;
const INT64_MAX: u64 = i64::MAX as u64;

/// Which keys a line holds, one bit each.
mod key {
    pub const TYPE: u32 = 1;
    pub const EVENT_ID: u32 = 1 << 1;
    pub const ORDER_ID: u32 = 1 << 2;
    pub const SEQ: u32 = 1 << 3;
    pub const OCCURRED_AT: u32 = 1 << 4;
    pub const SCHEMA_VERSION: u32 = 1 << 5;
    pub const CUSTOMER_ID: u32 = 1 << 6;
    pub const MODEL: u32 = 1 << 7;
    pub const TRIM: u32 = 1 << 8;
    pub const TRIM_RANK: u32 = 1 << 9;
    pub const LIST_PRICE: u32 = 1 << 10;
    pub const DEPOSIT: u32 = 1 << 11;
    pub const PLACED_AT: u32 = 1 << 12;
    pub const CHANNEL: u32 = 1 << 13;
    pub const AMOUNT: u32 = 1 << 14;
    pub const DUE_AT: u32 = 1 << 15;
    pub const PURPOSE: u32 = 1 << 16;
    pub const REASON: u32 = 1 << 17;
    pub const REFUND: u32 = 1 << 18;
    pub const DELIVERED_AT: u32 = 1 << 19;
    pub const VIN: u32 = 1 << 20;
    pub const NEW_CUSTOMER_ID: u32 = 1 << 21;
    pub const ENVELOPE: u32 = TYPE | EVENT_ID | ORDER_ID | SEQ | OCCURRED_AT | SCHEMA_VERSION;
    /// By type code: the keys an event of that type holds, all of them and no other.
    pub const OF_TYPE: [u32; 7] = [
        ENVELOPE | CUSTOMER_ID | MODEL | TRIM | TRIM_RANK | LIST_PRICE | DEPOSIT | PLACED_AT | CHANNEL,
        ENVELOPE | AMOUNT | DUE_AT | PURPOSE,
        ENVELOPE | AMOUNT,
        ENVELOPE | REASON | REFUND,
        ENVELOPE | AMOUNT,
        ENVELOPE | DELIVERED_AT | VIN,
        ENVELOPE | NEW_CUSTOMER_ID,
    ];
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Money<'a> {
    minor: u64,
    currency: &'a str,
}

/// One line's values, as read; `keys` says which it held.
#[derive(Default)]
struct Line<'a> {
    keys: u32,
    kind: u8,
    event_id: &'a str,
    order_id: &'a str,
    seq: u64,
    occurred_at: &'a str,
    schema_version: u64,
    model: &'a str,
    trim: &'a str,
    trim_rank: u64,
    minor: u64,
    currency: &'a str,
    deposit: u64,
    deposit_currency: &'a str,
    when: &'a str,
    detail: u8,
    vin: &'a str,
}

struct LineVisitor;

fn refuse<E: de::Error>(what: &str) -> E {
    E::custom(what)
}

/// A literal's index among its values.
fn index_of<E: de::Error>(value: &str, names: &[&str]) -> Result<u8, E> {
    names.iter().position(|name| *name == value).map(|at| at as u8).ok_or_else(|| refuse("not one of the literals"))
}

/// A `Text` of the shapes: 1 to 64 characters.
fn text<E: de::Error>(value: &str) -> Result<&str, E> {
    let fits = !value.is_empty() && (value.len() <= TEXT_CHARS || value.chars().count() <= TEXT_CHARS);
    if fits {
        Ok(value)
    } else {
        Err(refuse("text length"))
    }
}

/// ASCII text of exactly `chars` characters (the loader's numpy checks read it byte by byte).
fn ascii<'a, E: de::Error>(value: &'a str, chars: usize) -> Result<&'a str, E> {
    if value.len() == chars && value.is_ascii() {
        Ok(value)
    } else {
        Err(refuse("fixed-width text"))
    }
}

/// A timestamp as the log writer writes it: 27 characters, or 20 on a whole second.
fn time<'a, E: de::Error>(value: &'a str) -> Result<&'a str, E> {
    if (value.len() == TIME_CHARS || value.len() == WHOLE_SECOND_CHARS) && value.is_ascii() {
        Ok(value)
    } else {
        Err(refuse("timestamp"))
    }
}

/// An integer within [low, high].
fn within<E: de::Error>(value: u64, low: u64, high: u64) -> Result<u64, E> {
    if (low..=high).contains(&value) {
        Ok(value)
    } else {
        Err(refuse("integer out of range"))
    }
}

/// An amount: its minor units (within int64) and its currency's text.
fn money<E: de::Error>(money: Money<'_>) -> Result<(u64, &str), E> {
    Ok((within(money.minor, 0, INT64_MAX)?, money.currency))
}

impl<'de> Visitor<'de> for LineVisitor {
    type Value = Line<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an order event in canonical shape")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Line<'de>, A::Error> {
        let mut line = Line::default();
        while let Some(name) = map.next_key::<&'de str>()? {
            let bit = match name {
                "type" => { line.kind = index_of(map.next_value()?, &TYPES)?; key::TYPE }
                "event_id" => { line.event_id = ascii(map.next_value()?, ID_CHARS)?; key::EVENT_ID }
                "order_id" => { line.order_id = text(map.next_value()?)?; key::ORDER_ID }
                "seq" => { line.seq = within(map.next_value()?, 1, INT64_MAX)?; key::SEQ }
                "occurred_at" => { line.occurred_at = time(map.next_value()?)?; key::OCCURRED_AT }
                "schema_version" => { line.schema_version = map.next_value()?; key::SCHEMA_VERSION }
                "customer_id" => { text::<A::Error>(map.next_value()?)?; key::CUSTOMER_ID }
                "new_customer_id" => { text::<A::Error>(map.next_value()?)?; key::NEW_CUSTOMER_ID }
                "model" => { line.model = text(map.next_value()?)?; key::MODEL }
                "trim" => { line.trim = text(map.next_value()?)?; key::TRIM }
                "trim_rank" => { line.trim_rank = within(map.next_value()?, 0, MAX_TRIM_RANK)?; key::TRIM_RANK }
                "list_price" => { (line.minor, line.currency) = money(map.next_value()?)?; key::LIST_PRICE }
                "amount" => { (line.minor, line.currency) = money(map.next_value()?)?; key::AMOUNT }
                "refund" => { (line.minor, line.currency) = money(map.next_value()?)?; key::REFUND }
                "deposit" => { (line.deposit, line.deposit_currency) = money(map.next_value()?)?; key::DEPOSIT }
                "placed_at" => { line.when = time(map.next_value()?)?; key::PLACED_AT }
                "due_at" => { line.when = time(map.next_value()?)?; key::DUE_AT }
                "delivered_at" => { line.when = time(map.next_value()?)?; key::DELIVERED_AT }
                "channel" => { index_of::<A::Error>(map.next_value()?, &CHANNELS)?; key::CHANNEL }
                "purpose" => { line.detail = index_of(map.next_value()?, &PURPOSES)?; key::PURPOSE }
                "reason" => { line.detail = index_of(map.next_value()?, &REASONS)?; key::REASON }
                "vin" => { line.vin = ascii(map.next_value()?, VIN_CHARS)?; key::VIN }
                _ => return Err(refuse("unknown key")),
            };
            if line.keys & bit != 0 {
                return Err(refuse("a key twice"));
            }
            line.keys |= bit;
        }
        Ok(line)
    }
}

impl<'de> Deserialize<'de> for Line<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(LineVisitor)
    }
}

/// Strings by first sight: each a code, in the order first seen.
#[derive(Default)]
struct FirstSight<'a> {
    codes: HashMap<&'a str, u32>,
    names: Vec<&'a str>,
}

impl<'a> FirstSight<'a> {
    fn code(&mut self, name: &'a str) -> u32 {
        *self.codes.entry(name).or_insert_with(|| {
            self.names.push(name);
            (self.names.len() - 1) as u32
        })
    }
}

/// A block's columns, a row per line.
#[derive(Default)]
struct Columns<'a> {
    kind: Vec<u8>,
    seq: Vec<u8>,
    minor: Vec<u8>,
    deposit: Vec<u8>,
    trim_rank: Vec<u8>,
    detail: Vec<u8>,
    event: Vec<u8>,
    at: Vec<u8>,
    when: Vec<u8>,
    vin: Vec<u8>,
    order_ids: Vec<&'a str>,
    model: Vec<u8>,
    trim: Vec<u8>,
    models: FirstSight<'a>,
    trims: FirstSight<'a>,
    currency: Option<&'a str>,
}

fn push_time(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    if bytes.len() == TIME_CHARS {
        out.extend_from_slice(bytes);
    } else {
        // A whole second, padded as the loader pads it: `.000000` before its last character.
        out.extend_from_slice(&bytes[..WHOLE_SECOND_CHARS - 1]);
        out.extend_from_slice(b".000000");
        out.push(bytes[WHOLE_SECOND_CHARS - 1]);
    }
}

impl<'a> Columns<'a> {
    /// The block's one currency: this amount's, or the line is refused.
    fn same_currency(&mut self, currency: &'a str) -> bool {
        match self.currency {
            Some(seen) => seen == currency,
            None => {
                let capitals = currency.len() == 3 && currency.bytes().all(|c| c.is_ascii_uppercase());
                self.currency = Some(currency);
                capitals
            }
        }
    }

    fn push(&mut self, line: Line<'a>, schema_version: u64) -> bool {
        let kind = line.kind;
        if line.keys != key::OF_TYPE[kind as usize] || line.schema_version != schema_version {
            return false;
        }
        let has_money = line.keys & (key::LIST_PRICE | key::AMOUNT | key::REFUND) != 0;
        if has_money && !self.same_currency(line.currency) {
            return false;
        }
        self.kind.push(kind);
        self.seq.extend_from_slice(&(line.seq as i64).to_ne_bytes());
        self.minor.extend_from_slice(&(line.minor as i64).to_ne_bytes());
        self.deposit.extend_from_slice(&(line.deposit as i64).to_ne_bytes());
        self.trim_rank.extend_from_slice(&(line.trim_rank as i16).to_ne_bytes());
        self.detail.push(line.detail);
        self.event.extend_from_slice(line.event_id.as_bytes());
        push_time(&mut self.at, line.occurred_at);
        self.order_ids.push(line.order_id);
        if kind == PLACED || kind == DEMANDED || kind == DELIVERED {
            push_time(&mut self.when, line.when);
        }
        if kind == PLACED {
            if !self.same_currency(line.deposit_currency) {
                return false;
            }
            let (model, trim) = (self.models.code(line.model), self.trims.code(line.trim));
            self.model.extend_from_slice(&model.to_ne_bytes());
            self.trim.extend_from_slice(&trim.to_ne_bytes());
        }
        if kind == DELIVERED {
            self.vin.extend_from_slice(line.vin.as_bytes());
        }
        true
    }

    /// The order ids zero-padded to a whole number of 8-byte words (the widest's), and their lengths.
    fn orders(&self) -> (Vec<u8>, Vec<u8>, usize) {
        let longest = self.order_ids.iter().map(|id| id.len()).max().unwrap_or(1).max(1);
        let width = longest.div_ceil(8) * 8;
        let mut padded = vec![0u8; width * self.order_ids.len()];
        let mut lengths = Vec::with_capacity(8 * self.order_ids.len());
        for (row, id) in self.order_ids.iter().enumerate() {
            padded[row * width..row * width + id.len()].copy_from_slice(id.as_bytes());
            lengths.extend_from_slice(&(id.len() as i64).to_ne_bytes());
        }
        (padded, lengths, width)
    }
}

/// The block's lines read into columns, or None if any line is not plainly canonical.
fn read<'a>(text: &'a [u8], lines: usize, schema_version: u64, currency: Option<&'a str>) -> Option<Columns<'a>> {
    let mut columns = Columns { currency, ..Columns::default() };
    let body = text.strip_suffix(b"\n")?;
    let mut count = 0;
    for raw in body.split(|byte| *byte == b'\n') {
        count += 1;
        let mut deserializer = serde_json::Deserializer::from_slice(raw);
        let line = Line::deserialize(&mut deserializer).ok()?;
        deserializer.end().ok()?;
        if !columns.push(line, schema_version) {
            return None;
        }
    }
    (count == lines).then_some(columns)
}

/// The columns of a block of `lines` lines (its text ends with a newline), as a dict of bytearrays and
/// names, or None if a line is not plainly a canonical order event, or an amount is not in `currency` (if
/// given) or in the block's one currency. The GIL is released while reading.
#[pyfunction]
#[pyo3(signature = (text, lines, schema_version, currency=None))]
fn read_block<'py>(
    py: Python<'py>,
    text: PyBuffer<u8>,
    lines: usize,
    schema_version: u64,
    currency: Option<&str>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    if !text.is_c_contiguous() {
        return Err(pyo3::exceptions::PyValueError::new_err("the block's text must be contiguous"));
    }
    // SAFETY: the buffer stays exported (and its memory alive and unmoved) while `text` lives, to the end
    // of this call; it is only read.
    let bytes: &[u8] = unsafe { std::slice::from_raw_parts(text.buf_ptr() as *const u8, text.len_bytes()) };
    let currency: Option<String> = currency.map(str::to_owned);
    let found = py.detach(|| {
        read(bytes, lines, schema_version, currency.as_deref()).map(|columns| {
            let orders = columns.orders();
            (columns, orders)
        })
    });
    let Some((columns, (orders, order_lengths, width))) = found else {
        return Ok(None);
    };
    let out = PyDict::new(py);
    for (name, column) in [
        ("kind", &columns.kind), ("seq", &columns.seq), ("minor", &columns.minor), ("deposit", &columns.deposit),
        ("trim_rank", &columns.trim_rank), ("detail", &columns.detail), ("event", &columns.event),
        ("at", &columns.at), ("when", &columns.when), ("vin", &columns.vin), ("model", &columns.model),
        ("trim", &columns.trim), ("order", &orders), ("order_length", &order_lengths),
    ] {
        out.set_item(name, PyByteArray::new(py, column))?;
    }
    out.set_item("order_width", width)?;
    out.set_item("models", columns.models.names.clone())?;
    out.set_item("trims", columns.trims.names.clone())?;
    out.set_item("currency", columns.currency)?;
    Ok(Some(out))
}

#[pymodule]
fn orderbank_native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(read_block, module)?)?;
    module.add("TYPES", TYPES.to_vec())?;
    module.add("CHANNELS", CHANNELS.to_vec())?;
    module.add("PURPOSES", PURPOSES.to_vec())?;
    module.add("REASONS", REASONS.to_vec())?;
    module.add("TEXT_CHARS", TEXT_CHARS)?;
    module.add("MAX_TRIM_RANK", MAX_TRIM_RANK)?;
    Ok(())
}
