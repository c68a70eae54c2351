//! The operations files cannot drift from the code: every metric that `ops/prometheus/alerts.yml`, its unit tests
//! and the Grafana dashboard `ops/grafana/beatstream.json` name is one a service registers.

use std::collections::BTreeSet;

use beatstream_testkit::workspace_root;

/// Every sample name the four services export, whether or not it has a value yet, and Prometheus's own `up`.
fn exported() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = [
        beatstream_indexer::Metrics::new().sample_names(),
        beatstream_stream_relay::metrics::Metrics::new().sample_names(),
        beatstream_keeper::Metrics::new().sample_names(),
        beatstream_graphql_api::Metrics::new().sample_names(),
    ]
    .into_iter()
    .flatten()
    .collect();
    names.insert("up".to_owned());
    names
}

/// The `beatstream_*` metric names in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("beatstream_"))
        .map(str::to_owned)
        .collect()
}

/// Every PromQL expression (`"expr"`) of a Grafana dashboard.
fn exprs(value: &serde_json::Value, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", serde_json::Value::String(expr)) => found.push(expr.clone()),
                    _ => exprs(value, found),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| exprs(v, found)),
        _ => {}
    }
}

#[test]
fn alerts_and_dashboard_name_only_exported_metrics() -> eyre::Result<()> {
    let exported = exported();
    let ops = workspace_root().join("ops");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ops.join("grafana/beatstream.json"))?)?;
    let mut panels = Vec::new();
    exprs(&dashboard, &mut panels);
    eyre::ensure!(panels.len() >= 10, "the dashboard has only {} queries", panels.len());
    for (file, text) in [
        ("prometheus/alerts.yml", std::fs::read_to_string(ops.join("prometheus/alerts.yml"))?),
        (
            "prometheus/alerts_test.yml",
            std::fs::read_to_string(ops.join("prometheus/alerts_test.yml"))?,
        ),
        ("grafana/beatstream.json", panels.join("\n")),
    ] {
        let named = metric_names(&text);
        let unknown: Vec<_> = named.difference(&exported).collect();
        assert!(unknown.is_empty(), "ops/{file} names metrics no service exports: {unknown:?}");
        // Each service is watched.
        for service in ["indexer", "relay", "keeper", "api"] {
            let prefix = format!("beatstream_{service}_");
            assert!(
                named.iter().any(|n| n.starts_with(&prefix)),
                "ops/{file} names no {prefix}* metric"
            );
        }
    }
    Ok(())
}

#[test]
fn a_misspelt_metric_is_caught() {
    let exported = exported();
    let named = metric_names(
        "rate(beatstream_relay_vouchers_acked_total[5m]) + beatstream_relay_voucher_acked",
    );
    let unknown: Vec<_> = named.difference(&exported).collect();
    assert_eq!(unknown, ["beatstream_relay_voucher_acked"]);
    for name in
        ["beatstream_build_info", "beatstream_keeper_settlement_latency_seconds_bucket", "up"]
    {
        assert!(exported.contains(name), "{name}");
    }
}
