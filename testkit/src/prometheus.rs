//! Reading a Prometheus text exposition (`/metrics`) in tests.

/// The value of sample `name` with exactly `labels` (in any order) in a Prometheus text
/// exposition, or `None` when there is no such series (or its value is not a number).
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    want.sort_unstable();
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}')?),
            None => (series, ""),
        };
        if n != name {
            return None;
        }
        let mut got: Vec<&str> = rest.split(',').filter(|s| !s.is_empty()).collect();
        got.sort_unstable();
        (got == want).then(|| value.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::sample;

    #[test]
    fn finds_a_series_by_name_and_labels_in_any_order() {
        let text = "# HELP x_total X.\n# TYPE x_total counter\n\
                    x_total{a=\"1\",b=\"2\"} 7\nx_total{a=\"1\"} 3\ny 4.5\n";
        assert_eq!(
            sample(text, "x_total", &[("b", "2"), ("a", "1")]),
            Some(7.0)
        );
        assert_eq!(sample(text, "x_total", &[("a", "1")]), Some(3.0));
        assert_eq!(sample(text, "y", &[]), Some(4.5));
        assert_eq!(sample(text, "x_total", &[("a", "2")]), None);
        assert_eq!(sample(text, "x", &[]), None);
    }
}
