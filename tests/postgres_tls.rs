//! TLS to Postgres (rustls), on a server of the test's own configured with a certificate the test
//! makes (rcgen): a certificate authority, and a server certificate for the IP address 127.0.0.1
//! only. `sslmode=require` encrypts without checking the certificate; `verify-ca` checks that it
//! chains to `sslrootcert`; `verify-full` also that it names the host of the URL. A certificate
//! from another authority, or for another name, is refused with an error that says so, and no
//! error shows the URL's password.

#[path = "support/logs.rs"]
mod logs;
#[path = "support/pg_cluster.rs"]
mod pg_cluster;

use duraflow::prelude::*;
use duraflow::{Client, Store, Worker};
use pg_cluster::PgCluster;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

#[activity]
async fn tls_echo(s: String) -> Result<String, ActivityError> {
    Ok(format!("echo {s}"))
}

#[workflow]
async fn tls_flow(ctx: WorkflowContext, s: String) -> Result<String, WorkflowError> {
    Ok(ctx.activity(tls_echo, s).await?)
}

/// A certificate authority: its certificate (PEM) and an issuer to sign with.
fn authority(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, format!("duraflow test CA {name}"));
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

struct TlsServer {
    cluster: PgCluster,
    ca: std::path::PathBuf,
    other_ca: std::path::PathBuf,
}

fn tls_server() -> Option<TlsServer> {
    let mut cluster = PgCluster::start()?;
    let (ca_pem, issuer) = authority("trusted");
    let (other_pem, _) = authority("other");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "duraflow test server");
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let crt = cluster.write_private("server.crt", cert.pem().as_bytes());
    let key = cluster.write_private("server.key", key.serialize_pem().as_bytes());
    let ca = cluster.dir().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let other_ca = cluster.dir().join("other-ca.pem");
    std::fs::write(&other_ca, other_pem).unwrap();
    cluster.set("ssl=on");
    cluster.set(&format!("ssl_cert_file={}", crt.display()));
    cluster.set(&format!("ssl_key_file={}", key.display()));
    cluster.restart();
    Some(TlsServer {
        cluster,
        ca,
        other_ca,
    })
}

/// How many of `app`'s connections are encrypted, and how many it has.
async fn encrypted(cluster: &PgCluster, app: &str) -> (i64, i64) {
    let rows = cluster
        .exec(&format!(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_activity a
               JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = '{app}'"
        ))
        .await;
    (rows[0].get(0), rows[0].get(1))
}

async fn run_one(store: &Store, id: &str) {
    let w = Worker::new(store)
        .register(tls_echo)
        .register(tls_flow)
        .start();
    let out = Client::new(store)
        .start(tls_flow, id, "over TLS".to_string())
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(out, "echo over TLS");
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_require_verify_ca_and_verify_full() {
    logs::capture();
    let Some(s) = tls_server() else {
        return;
    };
    let c = &s.cluster;
    let ca = s.ca.display().to_string();

    // require: encrypted, every connection (the pool's and the LISTEN one).
    let store =
        Store::postgres_in_schema(&c.url("application_name=tls_req&sslmode=require"), "tls")
            .await
            .expect("sslmode=require");
    run_one(&store, "req").await;
    let (tls, all) = encrypted(c, "tls_req").await;
    assert!(
        all >= 2 && tls == all,
        "{tls} of {all} connections encrypted"
    );
    drop(store);

    // verify-full: the certificate chains to our CA and names 127.0.0.1.
    let url = c.url(&format!(
        "application_name=tls_full&sslmode=verify-full&sslrootcert={ca}"
    ));
    let store = Store::postgres_in_schema(&url, "tls")
        .await
        .expect("verify-full");
    run_one(&store, "full").await;
    let (tls, all) = encrypted(c, "tls_full").await;
    assert!(
        all >= 2 && tls == all,
        "{tls} of {all} connections encrypted"
    );
    drop(store);

    // verify-full against another authority: refused, and the error says why.
    let url = c.url(&format!(
        "connect_timeout=5&sslmode=verify-full&sslrootcert={}",
        s.other_ca.display()
    ));
    let e = Store::postgres(&url)
        .await
        .expect_err("an unknown authority");
    let m = format!("{e} / {e:?}");
    assert!(
        m.contains("UnknownIssuer") || m.contains("unknown issuer"),
        "{m}"
    );
    assert!(
        !e.is_transient(),
        "a certificate error does not pass by itself: retrying it would only hide it ({m})"
    );
    assert!(!m.contains(&c.password), "{m}");

    // The certificate names 127.0.0.1, not `localhost`: verify-full refuses the name, verify-ca
    // (which checks only the chain) accepts it.
    let by_name = |extra: &str| c.url(extra).replace("@127.0.0.1:", "@localhost:");
    let e = Store::postgres(&by_name(&format!(
        "connect_timeout=5&sslmode=verify-full&sslrootcert={ca}"
    )))
    .await
    .expect_err("a certificate for another name");
    let m = format!("{e} / {e:?}");
    assert!(
        m.contains("NotValidForName") || m.contains("not valid for name"),
        "{m}"
    );
    assert!(!m.contains(&c.password), "{m}");
    let store = Store::postgres_in_schema(
        &by_name(&format!(
            "application_name=tls_ca&sslmode=verify-ca&sslrootcert={ca}"
        )),
        "tls",
    )
    .await
    .expect("verify-ca");
    run_one(&store, "ca").await;
    drop(store);

    assert!(
        !logs::text().contains(&c.password),
        "a password in the logs"
    );
}
