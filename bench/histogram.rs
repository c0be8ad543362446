//! A Prometheus histogram scraped from a worker's `/metrics`, and its
//! quantiles as Prometheus' `histogram_quantile` estimates them (linear
//! within the bucket the rank falls in).

/// Cumulative counts by upper bound, in the exposition's order.
#[derive(Debug, Default, Clone)]
pub struct Histogram(Vec<(f64, f64)>);

impl Histogram {
    /// The `{name}_bucket` lines of a scrape.
    pub fn parse(text: &str, name: &str) -> Self {
        let prefix = format!("{name}_bucket{{le=\"");
        Self(
            text.lines()
                .filter_map(|l| l.strip_prefix(prefix.as_str()))
                .filter_map(|rest| {
                    let (le, count) = rest.split_once("\"} ")?;
                    let le = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().ok()?
                    };
                    Some((le, count.trim().parse().ok()?))
                })
                .collect(),
        )
    }

    /// Both histograms' observations (same buckets).
    pub fn add(&mut self, other: &Histogram) {
        if self.0.is_empty() {
            self.0 = other.0.clone();
            return;
        }
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            assert_eq!(mine.0, theirs.0, "histograms with different buckets");
            mine.1 += theirs.1;
        }
    }

    pub fn count(&self) -> f64 {
        self.0.last().map_or(0.0, |b| b.1)
    }

    /// The `q` quantile, in the unit of the bucket bounds; NaN when empty.
    /// A rank in the +Inf bucket reads as the largest finite bound.
    pub fn quantile(&self, q: f64) -> f64 {
        let total = self.count();
        if total == 0.0 {
            return f64::NAN;
        }
        let rank = q * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for &(le, cumulative) in &self.0 {
            if cumulative >= rank {
                if le.is_infinite() {
                    return lower;
                }
                let within = cumulative - below;
                return lower + (le - lower) * ((rank - below) / within.max(f64::MIN_POSITIVE));
            }
            (lower, below) = (le, cumulative);
        }
        lower
    }
}
