//! The verdict as a table (stdout) and as JSON (`--json`), for RELIABILITY.md.

use super::{
    check::{Kind, Tally, Verdict},
    nemesis::Injected,
};
use serde::Serialize;
use std::{collections::BTreeMap, fmt::Write};

pub fn table(v: &Verdict) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<46} {:>6} {:>6} {:>6} {:>6} {:>7} {:>5} {:>5} {:>13} {:>14}",
        "kind",
        "writes",
        "acked",
        "failed",
        "indet",
        "present",
        "lost",
        "dup",
        "indet-present",
        "failed-present"
    );
    let row = |out: &mut String, label: &str, t: &Tally| {
        let _ = writeln!(
            out,
            "{:<46} {:>6} {:>6} {:>6} {:>6} {:>7} {:>5} {:>5} {:>13} {:>14}",
            label,
            t.writes,
            t.acked,
            t.failed,
            t.indeterminate,
            t.present,
            t.lost,
            t.duplicated,
            t.indet_present,
            t.failed_present
        );
    };
    for kind in Kind::ALL {
        if let Some(t) = v.kinds.get(&kind) {
            let label = if kind.strict() {
                kind.label().to_string()
            } else {
                format!("{} (best effort)", kind.label())
            };
            row(&mut out, &label, t);
        }
    }
    row(&mut out, "all acknowledged writes", &v.total(true));
    out
}

/// The JSON summary of a run.
#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    pub seed: u64,
    pub backend: &'static str,
    pub duration_s: f64,
    pub concurrency: u32,
    pub modes: Vec<&'static str>,
    pub repeat: String,
    pub injected: &'a Injected,
    pub kinds: BTreeMap<&'static str, Tally>,
    pub total: Tally,
    pub pending_after_drain: i64,
    /// Seconds from the final restart until both outboxes were empty.
    pub drain_s: f64,
    pub violations: u64,
    pub pass: bool,
}

impl<'a> Summary<'a> {
    pub fn kinds(v: &Verdict) -> BTreeMap<&'static str, Tally> {
        v.kinds.iter().map(|(k, t)| (k.label(), *t)).collect()
    }
}
