//! The agents' metrics, through the [`metrics`] facade (the program picks
//! the recorder; none is installed by this crate):
//!
//! - `mp_agents_demands_handled_total` (counter), labelled `dispatcher`
//!   with the dispatcher's stats prefix (`disp/ot/<name>`, `disp/tp/<name>`,
//!   …): demands its threads have run. Counted on the dispatcher's threads,
//!   once per batch where a thread runs demands in batches.
//! - Every run-time stats [`Quantity`] as a gauge, set each time the
//!   figures are distributed ([`StatsController::turn_on`]) or recorded on
//!   request ([`StatsController::record_metrics`]): named `mp_agents_` and
//!   the quantity's suffix with dots as underscores, labelled `source`
//!   with its prefix. So `disp/ot/DEFAULT/demands.count` (the queue's
//!   length) is `mp_agents_demands_count{source="disp/ot/DEFAULT"}`, and
//!   the cooperations registered now are
//!   `mp_agents_coop_reg_count{source="coop_repository"}`.
//!
//! [`StatsController::turn_on`]: crate::StatsController::turn_on
//! [`StatsController::record_metrics`]: crate::StatsController::record_metrics
//!
//! The counter's handle is registered when the dispatcher's thread or pool
//! starts: a recorder installed later does not see it. Labels are the
//! program's own names, never a peer's. This module imports nothing of the
//! crate but the stats' [`Quantity`].

use metrics::{Counter, Label};

use crate::stats::Quantity;

/// Demands run by a dispatcher's threads (counter, label `dispatcher`).
pub const DEMANDS_HANDLED: &str = "mp_agents_demands_handled_total";

/// The prefix of the gauge each stats quantity is recorded as.
pub const STATS_PREFIX: &str = "mp_agents_";

/// The counter of demands handled by the dispatcher whose stats prefix is
/// `dispatcher`, registered with the recorder installed now.
pub(crate) fn demands_handled(dispatcher: &str) -> Counter {
    metrics::counter!(
        DEMANDS_HANDLED,
        vec![Label::new("dispatcher", dispatcher.to_string())]
    )
}

/// The gauge name a quantity with `suffix` is recorded as.
///
/// ```
/// assert_eq!(mp_agents::metric_name("demands.count"), "mp_agents_demands_count");
/// ```
pub fn metric_name(suffix: &str) -> String {
    let mut name = String::with_capacity(STATS_PREFIX.len() + suffix.len());
    name.push_str(STATS_PREFIX);
    name.extend(suffix.chars().map(|c| if c == '.' { '_' } else { c }));
    name
}

/// Sets each quantity's gauge to its value.
pub(crate) fn record(quantities: &[Quantity]) {
    for q in quantities {
        metrics::gauge!(
            metric_name(q.suffix),
            vec![Label::new("source", q.prefix.clone())]
        )
        .set(q.value as f64);
    }
}
