//! A metric family as data: name, help, type and samples. The produce and consume snapshots
//! describe themselves as a list of these ([`super::produce`], [`super::consume`]); the same
//! list is encoded for Prometheus by [`SnapshotCollector`] and shown on the live page, so the
//! two cannot disagree on a name or a value.

use std::borrow::Cow;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Only goes up while the process runs; exposed with `_total` appended.
    Counter,
    Gauge,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    Count(u64),
    Int(i64),
    Float(f64),
}

impl Value {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Value::Count(v) => v as f64,
            Value::Int(v) => v as f64,
            Value::Float(v) => v,
        }
    }
}

/// One sample: at most one label (every family here has a bounded set of label values: a
/// cause, a kind, a partition, a loop).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) label: Option<(&'static str, Cow<'static, str>)>,
    pub(crate) value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Family {
    /// Without `_total` for counters (the encoder appends it).
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) kind: Kind,
    pub(crate) samples: Vec<Sample>,
}

impl Family {
    pub(crate) fn counter(name: &'static str, help: &'static str, v: u64) -> Family {
        Family {
            name,
            help,
            kind: Kind::Counter,
            samples: vec![Sample {
                label: None,
                value: Value::Count(v),
            }],
        }
    }

    pub(crate) fn gauge(name: &'static str, help: &'static str, v: Value) -> Family {
        Family {
            name,
            help,
            kind: Kind::Gauge,
            samples: vec![Sample {
                label: None,
                value: v,
            }],
        }
    }

    /// A family with one label whose values are `samples`' first elements.
    pub(crate) fn labelled(
        name: &'static str,
        help: &'static str,
        kind: Kind,
        label: &'static str,
        samples: impl IntoIterator<Item = (Cow<'static, str>, Value)>,
    ) -> Family {
        Family {
            name,
            help,
            kind,
            samples: samples
                .into_iter()
                .map(|(v, value)| Sample {
                    label: Some((label, v)),
                    value,
                })
                .collect(),
        }
    }

    /// The name a sample has in the exposition, with its label, e.g.
    /// `tweetpipe_consume_records_written_total{kind="tweet"}`.
    pub(crate) fn sample_name(&self, sample: &Sample) -> String {
        let mut s = self.name.to_string();
        if self.kind == Kind::Counter {
            s.push_str("_total");
        }
        if let Some((k, v)) = &sample.label {
            s.push_str(&format!("{{{k}=\"{v}\"}}"));
        }
        s
    }

    fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let metric_type = match self.kind {
            Kind::Counter => MetricType::Counter,
            Kind::Gauge => MetricType::Gauge,
        };
        let mut family = encoder.encode_descriptor(self.name, self.help, None, metric_type)?;
        if let [Sample { label: None, value }] = self.samples.as_slice() {
            return encode_value(self.kind, *value, family);
        }
        for s in &self.samples {
            // A family mixes no unlabelled sample with labelled ones; skip one if it did.
            if let Some((k, v)) = &s.label {
                let labels = [(*k, v.as_ref())];
                encode_value(self.kind, s.value, family.encode_family(&labels)?)?
            }
        }
        Ok(())
    }
}

fn encode_value(
    kind: Kind,
    value: Value,
    encoder: prometheus_client::encoding::MetricEncoder,
) -> Result<(), std::fmt::Error> {
    match (kind, value) {
        (Kind::Counter, Value::Count(v)) => ConstCounter::new(v).encode(encoder),
        (Kind::Counter, v) => ConstCounter::new(v.as_f64().max(0.0)).encode(encoder),
        (Kind::Gauge, Value::Count(v)) => {
            ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)).encode(encoder)
        }
        (Kind::Gauge, Value::Int(v)) => ConstGauge::new(v).encode(encoder),
        (Kind::Gauge, Value::Float(v)) => ConstGauge::new(v).encode(encoder),
    }
}

/// A collector that asks `families` for the current values at every scrape: the counters are
/// read where the pipeline already keeps them, nothing is counted twice.
pub(crate) struct SnapshotCollector<F>(pub(crate) F);

impl<F> std::fmt::Debug for SnapshotCollector<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotCollector")
    }
}

impl<F> Collector for SnapshotCollector<F>
where
    F: Fn() -> Vec<Family> + Send + Sync + 'static,
{
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in (self.0)() {
            family.encode(&mut encoder)?;
        }
        Ok(())
    }
}
