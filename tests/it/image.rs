//! The container image (deploy/image.sh), built with buildah and run with
//! podman: `landlord migrate`, `landlord api` and two `landlord worker`
//! containers against the private Postgres; a tenant provisioned through
//! the containerised API ends `active`. The image is built from this test
//! build's binary (CI builds no release); deploy/image.sh builds the
//! release one by default.

use crate::harness::{TestEnv, wait_until};
use std::os::unix::fs::PermissionsExt;
use std::process::Output;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/image.sh");

fn script(args: &[&str], image: &str) -> String {
    let out = std::process::Command::new(SCRIPT)
        .args(args)
        .env("LANDLORD_IMAGE", image)
        .output()
        .expect("deploy/image.sh");
    assert!(
        out.status.success(),
        "deploy/image.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Containers named here are removed when the test ends, whatever happens.
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = std::process::Command::new("podman")
                .args(["rm", "-f", "-t", "2", name])
                .output();
        }
    }
}

/// `podman {args}`, which must succeed; its trimmed stdout.
fn podman_ok(args: &[&str]) -> String {
    let out = std::process::Command::new("podman")
        .args(args)
        .output()
        .expect("podman");
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn podman(env: &TestEnv, flags: &str, args: &[&str], storage: &str) -> Output {
    let mut cmd = std::process::Command::new("podman");
    cmd.arg("run").args(flags.split_whitespace());
    for (k, v) in &env.vars {
        cmd.arg("-e").arg(format!("{k}={v}"));
    }
    cmd.args(["-v", &format!("{storage}:{storage}")]);
    cmd.args(args).output().expect("podman run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_migrates_serves_and_provisions_in_containers() {
    let env = TestEnv::new(&[]).await;
    let image = format!("localhost/landlord-test-{}", env.prefix);
    let tag = script(&["build", env!("CARGO_BIN_EXE_landlord")], &image);
    let flags = script(&["run-flags"], &image);
    let storage = env.storage.path().display().to_string();
    // The image's user (uid 10001) writes the tenants' folders here.
    std::fs::set_permissions(&storage, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut containers = Containers(Vec::new());

    let inspected = podman_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.User}} {{.Size}}",
        &tag,
    ]);
    assert!(inspected.starts_with("10001:10001 "), "{inspected}");

    // The CA roots reqwest's rustls verifier reads (none are compiled in):
    // copied out of a created, never started, container.
    let probe = format!("{}-roots", env.prefix);
    containers.0.push(probe.clone());
    podman_ok(&["create", "--name", &probe, &tag]);
    let roots = env.storage.path().join("roots.pem");
    let from = format!("{probe}:/etc/ssl/certs/ca-certificates.crt");
    podman_ok(&["cp", &from, roots.to_str().unwrap()]);
    let pem = std::fs::read_to_string(&roots).unwrap();
    assert!(
        pem.matches("BEGIN CERTIFICATE").count() > 50,
        "the image's CA bundle holds too few roots"
    );

    let rm = format!("{flags} --rm");
    let out = podman(&env, &rm, &[&tag, "migrate"], &storage);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = podman(
        &env,
        &rm,
        &[&tag, "tokens", "create", "--name", "ci"],
        &storage,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}");
    for (role, args) in [
        ("api", vec!["api", "--bind", bind.as_str()]),
        ("worker1", vec!["worker"]),
        ("worker2", vec!["worker"]),
    ] {
        let name = format!("{}-{role}", env.prefix);
        let detached = format!("{flags} -d --name {name}");
        let mut all = vec![tag.as_str()];
        all.extend(args);
        let out = podman(&env, &detached, &all, &storage);
        assert!(
            out.status.success(),
            "{role}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        containers.0.push(name);
    }

    let http = reqwest::Client::new();
    let url = format!("http://{bind}");
    wait_until("the containerised API is ready", 30, async || {
        http.get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let res = http
        .post(format!("{url}/tenants"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "name": "boxed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    wait_until("the tenant is active", 60, async || {
        let t: serde_json::Value = http
            .get(format!("{url}/tenants/boxed"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        t["status"] == "active"
    })
    .await;
    // Both worker containers listen: each registers its step queue worker
    // in this test's own master database (none with a notify one: no
    // notification channel is configured). One container may have served
    // the tenant before the other registered (each opens its database
    // session first).
    wait_until(
        "both containers' step queue workers registered",
        30,
        async || {
            env.count_all(
                "SELECT count(*) FROM apalis.workers WHERE worker_type = 'landlord::steps'",
            )
            .await
                >= 2
        },
    )
    .await;
    let _ = std::process::Command::new("podman")
        .args(["rmi", "-f", &tag, &format!("{image}:latest")])
        .output();
}
