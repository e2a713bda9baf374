//! Installer steps run by the Helm chart's hook Jobs, so secrets are made at install time in
//! the cluster and never appear in rendered manifests:
//! - `setup-credentials` makes the API key the server bootstraps with (once; kept on upgrade);
//! - `register-webhook` registers the sidecar's endpoint and stores its signing secret.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use std::collections::BTreeMap;
use std::time::Duration;
use tooken_contract::webhooks::CreateWebhookRequest;

fn secret(name: &str, data: BTreeMap<String, String>) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".into(),
                "tooken-installer".into(),
            )])),
            ..Default::default()
        },
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// Creates `name` unless it exists; `false` when it already did.
async fn create_once(secrets: &Api<Secret>, secret: &Secret) -> Result<bool, kube::Error> {
    match secrets.create(&PostParams::default(), secret).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(err) => Err(err),
    }
}

fn read(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
}

/// Makes the Secret `name` with `url` and a new `apiKey`, unless it exists.
pub async fn credentials(
    client: kube::Client,
    namespace: &str,
    name: &str,
    api_url: &str,
) -> anyhow::Result<()> {
    let secrets: Api<Secret> = Api::namespaced(client, namespace);
    let key = tooken_contract::Secret::generate();
    let data = BTreeMap::from([
        ("url".into(), api_url.to_owned()),
        ("apiKey".into(), key.into_exposed()),
    ]);
    if create_once(&secrets, &secret(name, data)).await? {
        println!("created Secret {namespace}/{name} with a new API key");
    } else {
        println!("Secret {namespace}/{name} exists; kept it");
    }
    Ok(())
}

/// Registers `webhook_url` for `events` and stores the signing secret in `webhook_secret`,
/// unless that Secret exists.
pub async fn webhook(
    client: kube::Client,
    namespace: &str,
    credentials_secret: &str,
    webhook_secret: &str,
    webhook_url: &str,
    events: Vec<String>,
) -> anyhow::Result<()> {
    let secrets: Api<Secret> = Api::namespaced(client, namespace);
    if secrets.get_opt(webhook_secret).await?.is_some() {
        println!("Secret {namespace}/{webhook_secret} exists; the webhook is registered");
        return Ok(());
    }
    let credentials = secrets
        .get(credentials_secret)
        .await
        .map_err(|err| anyhow::anyhow!("cannot read Secret {credentials_secret}: {err}"))?;
    let url = read(&credentials, "url")
        .ok_or_else(|| anyhow::anyhow!("{credentials_secret} has no `url`"))?;
    let api_key = read(&credentials, "apiKey")
        .ok_or_else(|| anyhow::anyhow!("{credentials_secret} has no `apiKey`"))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let api = tooken_contract::Client::new(http, &url, &api_key);
    // The server may still be starting.
    let mut waited = Duration::ZERO;
    while !api.ready().await {
        anyhow::ensure!(
            waited < Duration::from_secs(300),
            "the Tooken API at {url} was not ready within 5 minutes"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        waited += Duration::from_secs(2);
    }
    let created = api
        .create_webhook(&CreateWebhookRequest {
            url: webhook_url.to_owned(),
            event_types: events,
            description: Some("tooken-sidecar (installed by Helm)".into()),
            enabled: Some(true),
        })
        .await?;
    let data = BTreeMap::from([("secret".into(), created.secret)]);
    if create_once(&secrets, &secret(webhook_secret, data)).await? {
        println!(
            "registered webhook {} and stored its secret in {namespace}/{webhook_secret}",
            created.webhook.id
        );
    } else {
        // Another run won the race; drop the endpoint this one made.
        api.delete_webhook(&created.webhook.id).await?;
        println!("Secret {namespace}/{webhook_secret} appeared meanwhile; kept it");
    }
    Ok(())
}
