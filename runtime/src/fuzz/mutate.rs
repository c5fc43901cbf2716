//! The mutation engine of the stable-Rust fuzzer: a seeded generator and the mutations it stacks on
//! corpus inputs, at the byte level (bit flips, cuts, splices, interesting bytes and numbers) and at
//! the JSON level (a node replaced by a value of another type or an edge-case number, a key removed
//! or renamed, an event name swapped in), so that most mutants still reach past the JSON parser.

use serde_json::{Map, Value};

/// A small, seeded, deterministic generator (SplitMix64): the same seed gives the same campaign.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True once in `n` times.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Tokens worth inserting into JSON and text inputs.
const DICTIONARY: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1.5",
    "1e309",
    "-9223372036854775808",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "4294967296",
    "\"\"",
    "{}",
    "[]",
    "\"\\ud800\"",
    "\"\\u0000\"",
    "\"event\"",
    "\"type\"",
    "\"detail\"",
    "\"Ok\"",
    "\"Err\"",
    "\"activity_seq\"",
    "\"workflow_started\"",
    "\"activity_scheduled\"",
    "\"workflow_task_completed\"",
    "\"local_activity_marker\"",
    "\"application\"",
    "\"failed\"",
    "\"cancelled\"",
    "\"timeout\"",
    "\"nondeterminism\"",
    "\"start_to_close\"",
    "\"retry_policy\"",
    "ms",
    "s",
    "m",
    "h",
    "d",
    "µs",
    "SQLite format 3\0",
];

/// Numbers at the edges of the types the stored format uses.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "255",
    "256",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "-0.0",
    "0.5",
    "1e-320",
];

/// Event names and tags, to swap for a string of the input.
const NAMES: &[&str] = &[
    "workflow_started",
    "workflow_task_completed",
    "activity_scheduled",
    "activity_started",
    "activity_completed",
    "activity_failed",
    "activity_timed_out",
    "activity_cancel_requested",
    "activity_cancelled",
    "local_activity_marker",
    "timer_started",
    "timer_fired",
    "timer_cancelled",
    "workflow_cancel_requested",
    "workflow_completed",
    "workflow_failed",
    "workflow_cancelled",
    "signal_received",
    "application",
    "failed",
    "cancelled",
    "timeout",
    "activity",
    "nondeterminism",
    "heartbeat",
    "schedule_to_close",
    "try_cancel",
    "abandon",
    "",
];

/// One mutant of `input`: one to four mutations stacked, half of the time through the JSON
/// structure when the input parses as JSON. `others` are the rest of the corpus, for splices.
pub fn mutate(rng: &mut Rng, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut data = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        if rng.one_in(2) {
            if let Ok(mut value) = serde_json::from_slice::<Value>(&data) {
                mutate_json(rng, &mut value, others);
                data = serde_json::to_vec(&value).unwrap_or(data);
                continue;
            }
        }
        mutate_bytes(rng, &mut data, others);
    }
    data
}

/// A byte-level mutation.
pub fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>, others: &[Vec<u8>]) {
    let len = data.len();
    match rng.below(10) {
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = *rng.pick(b"\0\xff\x7f\x80\"{}[],:\\09-e.\n ");
        }
        2 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(16)).min(len);
            data.drain(start..end);
        }
        3 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(32)).min(len);
            let copy = data[start..end].to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, copy);
        }
        4 => {
            let at = rng.below(len + 1);
            let token = rng.pick(DICTIONARY).as_bytes();
            data.splice(at..at, token.iter().copied());
        }
        5 if len > 0 => data.truncate(rng.below(len)),
        6 if !others.is_empty() => {
            let other = rng.pick(others);
            let cut = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        7 => replace_number(rng, data),
        8 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            data.splice(at..at, bytes);
        }
        _ if len > 0 => {
            // A run of one byte value over a stretch: zeroed or 0xff pages, a smashed field.
            let start = rng.below(len);
            let end = (start + 1 + rng.below(64)).min(len);
            let b = if rng.one_in(2) { 0 } else { 0xff };
            data[start..end].fill(b);
        }
        _ => data.extend_from_slice(rng.pick(DICTIONARY).as_bytes()),
    }
}

/// Replaces a run of digits with an edge-case number.
fn replace_number(rng: &mut Rng, data: &mut Vec<u8>) {
    let digits: Vec<usize> = (0..data.len())
        .filter(|&i| data[i].is_ascii_digit() && (i == 0 || !data[i - 1].is_ascii_digit()))
        .collect();
    if digits.is_empty() {
        return;
    }
    let start = *rng.pick(&digits);
    let mut end = start;
    while end < data.len() && data[end].is_ascii_digit() {
        end += 1;
    }
    let n = rng.pick(NUMBERS).as_bytes();
    data.splice(start..end, n.iter().copied());
}

/// A JSON-level mutation of one node, picked at random.
pub fn mutate_json(rng: &mut Rng, value: &mut Value, others: &[Vec<u8>]) {
    let count = count_nodes(value);
    let target = rng.below(count);
    let mut seen = 0;
    if let Some(node) = nth_node(value, target, &mut seen) {
        mutate_node(rng, node, others);
    }
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

fn nth_node<'a>(v: &'a mut Value, n: usize, seen: &mut usize) -> Option<&'a mut Value> {
    if *seen == n {
        return Some(v);
    }
    *seen += 1;
    match v {
        Value::Array(a) => a.iter_mut().find_map(|c| nth_node(c, n, seen)),
        Value::Object(o) => o.values_mut().find_map(|c| nth_node(c, n, seen)),
        _ => None,
    }
}

fn mutate_node(rng: &mut Rng, node: &mut Value, others: &[Vec<u8>]) {
    match rng.below(9) {
        0 => *node = random_scalar(rng),
        1 => {
            let n = rng.pick(NUMBERS);
            *node = serde_json::from_str(n).unwrap_or(Value::Null);
        }
        2 => *node = Value::String(rng.pick(NAMES).to_string()),
        3 => *node = Value::Array(vec![node.take()]),
        4 => {
            // A subtree of another corpus input grafted here.
            if let Some(other) = others
                .get(rng.below(others.len()))
                .and_then(|o| serde_json::from_slice::<Value>(o).ok())
            {
                let count = count_nodes(&other);
                let mut other = other;
                let mut seen = 0;
                if let Some(graft) = nth_node(&mut other, rng.below(count), &mut seen) {
                    *node = graft.take();
                }
            }
        }
        5 => match node {
            Value::Object(o) if !o.is_empty() => {
                let key = o
                    .keys()
                    .nth(rng.below(o.len()))
                    .cloned()
                    .unwrap_or_default();
                let removed = o.remove(&key);
                if rng.one_in(2) {
                    // Renamed rather than removed.
                    let name = format!("{key}{}", rng.pick(&["_", "X", ""]));
                    o.insert(
                        if name == key {
                            rng.pick(NAMES).to_string()
                        } else {
                            name
                        },
                        removed.unwrap_or(Value::Null),
                    );
                }
            }
            Value::Array(a) if !a.is_empty() => {
                let i = rng.below(a.len());
                if rng.one_in(2) {
                    a.remove(i);
                } else {
                    let copy = a[i].clone();
                    a.insert(rng.below(a.len() + 1), copy);
                }
            }
            _ => *node = Value::Object(Map::new()),
        },
        6 => {
            if let Value::Object(o) = node {
                o.insert(rng.pick(NAMES).to_string(), random_scalar(rng));
            } else {
                *node = Value::Null;
            }
        }
        7 => {
            if let Value::String(s) = node {
                let mut bytes = s.clone().into_bytes();
                mutate_bytes(rng, &mut bytes, &[]);
                *s = String::from_utf8_lossy(&bytes).into_owned();
            } else {
                *node = Value::String("x".repeat(rng.below(3) * 1000));
            }
        }
        _ => {
            // Deep nesting: parsers with a recursion limit must say so, not overflow the stack.
            let depth = 1 + rng.below(200);
            let mut v = node.take();
            for _ in 0..depth {
                v = if rng.one_in(2) {
                    Value::Array(vec![v])
                } else {
                    let mut m = Map::new();
                    m.insert("cause".into(), v);
                    Value::Object(m)
                };
            }
            *node = v;
        }
    }
}

fn random_scalar(rng: &mut Rng) -> Value {
    match rng.below(6) {
        0 => Value::Null,
        1 => Value::Bool(rng.one_in(2)),
        2 => Value::from(rng.next_u64()),
        3 => Value::from(rng.next_u64() as i64),
        4 => serde_json::Number::from_f64(f64::from_bits(rng.next_u64()))
            .map(Value::Number)
            .unwrap_or(Value::Null),
        _ => Value::String(rng.pick(NAMES).to_string()),
    }
}
