//! Random faults at a configurable rate, for soak tests: every request to
//! the backend and every part PUT draws from a seeded generator, so a run
//! can be repeated with the seed it printed.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::stats::Route;

/// What a faulted request gets instead of (or on top of) its real answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// The connection is closed partway: a part PUT after some of its body
    /// was read, a backend call after half of its real answer was sent.
    Reset,
    /// This status (500, 502, 503 or 429) without `Retry-After`, and without
    /// reaching the store or the backend's handler.
    Status(u16),
    /// This status with `Retry-After: 1`.
    StatusRetryAfter(u16),
    /// Nothing for [`ChaosPlan::stall`] (longer than the client waits),
    /// then the request is handled as if nothing happened.
    Stall,
    /// A part PUT is refused with S3's 403 "Request has expired".
    Expired,
    /// A backend call runs, but its answer is cut in half (valid HTTP,
    /// broken JSON).
    Truncated,
    /// A backend call runs, but the client gets a 200 HTML page instead.
    NotJson,
    /// A part PUT is stored, but its answer has no ETag header.
    NoEtag,
    /// The real answer, [`ChaosPlan::delay`] late.
    Delay,
}

impl Fault {
    /// Every kind of fault, each status once.
    pub const ALL: [Fault; 13] = [
        Fault::Reset,
        Fault::Status(500),
        Fault::Status(502),
        Fault::Status(503),
        Fault::Status(429),
        Fault::StatusRetryAfter(503),
        Fault::StatusRetryAfter(429),
        Fault::Stall,
        Fault::Expired,
        Fault::Truncated,
        Fault::NotJson,
        Fault::NoEtag,
        Fault::Delay,
    ];

    fn applies_to(self, target: Target) -> bool {
        match self {
            Fault::Expired | Fault::NoEtag => target == Target::PartPut,
            Fault::Truncated | Fault::NotJson => target != Target::PartPut,
            _ => true,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Reset => f.write_str("reset"),
            Fault::Status(s) => write!(f, "{s}"),
            Fault::StatusRetryAfter(s) => write!(f, "{s}+Retry-After"),
            Fault::Stall => f.write_str("stall"),
            Fault::Expired => f.write_str("403 expired"),
            Fault::Truncated => f.write_str("truncated"),
            Fault::NotJson => f.write_str("not JSON"),
            Fault::NoEtag => f.write_str("no ETag"),
            Fault::Delay => f.write_str("delay"),
        }
    }
}

/// Which requests a plan covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    PartPut,
    Backend(Route),
}

/// A random fault plan.
#[derive(Clone, Debug)]
pub struct ChaosPlan {
    /// Share of covered requests that get a fault, 0.0..=1.0.
    pub rate: f64,
    pub seed: u64,
    /// The faults drawn from (uniformly, among those that fit the request).
    pub faults: Vec<Fault>,
    /// The requests covered; empty means all of them.
    pub targets: Vec<Target>,
    /// How long a [`Fault::Stall`] holds the request.
    pub stall: Duration,
    /// How late a [`Fault::Delay`] answer is.
    pub delay: Duration,
}

impl ChaosPlan {
    /// Every fault kind on every request at `rate`.
    pub fn everywhere(rate: f64, seed: u64) -> ChaosPlan {
        ChaosPlan {
            rate,
            seed,
            faults: Fault::ALL.to_vec(),
            targets: Vec::new(),
            stall: Duration::from_secs(3),
            delay: Duration::from_millis(300),
        }
    }

    /// Only `faults`, on every request of `target`, always.
    pub fn always(target: Target, faults: &[Fault]) -> ChaosPlan {
        ChaosPlan {
            rate: 1.0,
            seed: 1,
            faults: faults.to_vec(),
            targets: vec![target],
            stall: Duration::from_secs(3),
            delay: Duration::from_millis(300),
        }
    }
}

/// What a plan did so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChaosReport {
    /// Requests covered by the plan (faulted or not).
    pub requests: u32,
    pub injected: BTreeMap<Fault, u32>,
}

impl ChaosReport {
    pub fn faults(&self) -> u32 {
        self.injected.values().sum()
    }
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} requests, {} faults (", self.requests, self.faults())?;
        for (i, (fault, n)) in self.injected.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{fault}: {n}")?;
        }
        f.write_str(")")
    }
}

#[derive(Debug)]
pub(crate) struct Chaos {
    pub plan: ChaosPlan,
    rng: StdRng,
    pub report: ChaosReport,
}

impl Chaos {
    pub fn new(plan: ChaosPlan) -> Chaos {
        Chaos {
            rng: StdRng::seed_from_u64(plan.seed),
            plan,
            report: ChaosReport::default(),
        }
    }

    /// Draws the fate of one request.
    pub fn roll(&mut self, target: Target) -> Option<Fault> {
        if !self.plan.targets.is_empty() && !self.plan.targets.contains(&target) {
            return None;
        }
        self.report.requests += 1;
        if !self.rng.random_bool(self.plan.rate.clamp(0.0, 1.0)) {
            return None;
        }
        let fitting: Vec<Fault> = self
            .plan
            .faults
            .iter()
            .copied()
            .filter(|f| f.applies_to(target))
            .collect();
        if fitting.is_empty() {
            return None;
        }
        let fault = fitting[self.rng.random_range(0..fitting.len())];
        *self.report.injected.entry(fault).or_insert(0) += 1;
        Some(fault)
    }
}
