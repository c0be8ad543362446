//! The deployment files, checked with the tools these machines can install
//! (deploy/charts.sh): `helm lint` and `helm template` for the chart,
//! `docker-compose config` for the compose file. Neither reaches a cluster
//! or a registry; the image itself runs in tests/it/image.rs.

use std::process::Command;

const CHARTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/charts.sh");
const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/helm/landlord");

fn run(args: &[&str]) -> String {
    let out = Command::new(CHARTS)
        .args(args)
        .output()
        .expect("deploy/charts.sh");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "deploy/charts.sh {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The rendered documents of one kind.
fn docs<'a>(all: &'a str, kind: &str) -> Vec<&'a str> {
    all.split("\n---")
        .filter(|d| d.lines().any(|l| l == format!("kind: {kind}")))
        .collect()
}

#[test]
fn compose_and_chart_render() {
    let lint = run(&["helm", "lint", "--strict", CHART]);
    assert!(lint.contains("0 chart(s) failed"), "{lint}");

    let out = run(&[
        "helm",
        "template",
        "prod",
        CHART,
        "--set",
        "stepTimeoutSecs=600",
    ]);
    let deployments = docs(&out, "Deployment");
    assert_eq!(deployments.len(), 2, "{out}");
    let worker = deployments
        .iter()
        .find(|d| d.contains("name: prod-worker"))
        .expect("worker Deployment");
    // The step timeout plus the margin, so a stopping worker ends its steps.
    assert!(
        worker.contains("terminationGracePeriodSeconds: 630"),
        "{worker}"
    );
    assert!(
        worker.contains("path: /readyz") && worker.contains("path: /healthz"),
        "{worker}"
    );
    assert!(worker.contains("value: \"600\""), "{worker}");
    for d in &deployments {
        assert!(d.contains("runAsNonRoot: true"), "{d}");
        // Secrets by reference only: files from the existing Secret.
        assert!(d.contains("secretName: landlord-secrets"), "{d}");
        assert!(d.contains("MASTER_DATABASE_URL_FILE"), "{d}");
        assert!(!d.contains("name: MASTER_DATABASE_URL\n"), "{d}");
    }
    assert_eq!(docs(&out, "Job").len(), 1, "the migrate Job");
    assert!(out.contains("helm.sh/hook: pre-install,pre-upgrade"));
    assert_eq!(docs(&out, "Service").len(), 2);
    assert_eq!(docs(&out, "ServiceMonitor").len(), 1);
    assert_eq!(docs(&out, "Secret").len(), 0, "the chart holds no secret");

    let off = run(&[
        "helm",
        "template",
        "prod",
        CHART,
        "--set",
        "serviceMonitor.enabled=false",
        "--set",
        "worker.probes=false",
    ]);
    assert_eq!(docs(&off, "ServiceMonitor").len(), 0);
    let probed: Vec<_> = docs(&off, "Deployment")
        .into_iter()
        .filter(|d| d.contains("path: /readyz"))
        .collect();
    assert_eq!(probed.len(), 1, "only the API keeps its probes");
    assert!(probed[0].contains("name: prod-api"));

    let compose = run(&["compose-config"]);
    for service in [
        "api:",
        "worker-1:",
        "worker-2:",
        "migrate:",
        "postgres:",
        "keycloak:",
        "ferretdb:",
        "qdrant:",
        "s3:",
        "otel-collector:",
    ] {
        assert!(
            compose.contains(&format!("  {service}\n")),
            "{service} in\n{compose}"
        );
    }
    assert!(compose.contains("MASTER_DATABASE_URL_FILE: /run/secrets/master_database_url"));
    assert!(
        compose.contains("stop_grace_period: 5m30s") || compose.contains("stop_grace_period: 330s"),
        "{compose}"
    );
}
