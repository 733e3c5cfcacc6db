//! The Teams channel: one Workflows webhook POST per delivery.

use async_trait::async_trait;
use clarion_core::channel::{Channel, Delivery, DeliveryError, Receipt};
use clarion_core::registry::ChannelConfigError;
use clarion_http::{HttpClient, HttpSettings, SecretUrl};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// `[channels.<name>]` settings of a `kind = "teams"` channel.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamsConfig {
    /// The Workflows webhook URL (its `sig` query parameter is the
    /// credential): use `${TEAMS_WORKFLOW_URL}`; only its origin is ever shown.
    pub url: SecretUrl,
    /// Transport: timeout, connect_timeout, proxy, tls_ca_file, allow_redirects.
    #[serde(default)]
    pub http: HttpSettings,
}

/// Posts each delivery as an Adaptive Card to one Workflows webhook.
/// `Debug` shows the URL's origin only.
#[derive(Debug)]
pub struct TeamsChannel {
    http: HttpClient,
    url: SecretUrl,
}

impl TeamsChannel {
    /// Builds the channel (no network I/O).
    pub fn from_config(config: TeamsConfig) -> Result<Self, ChannelConfigError> {
        let http = HttpClient::builder(&config.http)
            .endpoint(&config.url)
            .build()?;
        Ok(TeamsChannel {
            http,
            url: config.url,
        })
    }

    /// The exact JSON message [`Channel::deliver`] posts for `delivery`.
    pub fn message(&self, delivery: &Delivery) -> Value {
        crate::card::message(delivery)
    }
}

#[async_trait]
impl Channel for TeamsChannel {
    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, DeliveryError> {
        // Teams ignores the key; a proxy can drop duplicates by it.
        let request = (self.http.json_request(&self.url, &self.message(delivery))?)
            .header("idempotency-key", delivery.idempotency_key());
        let response = self.http.send(request).await?;
        // Workflows answers 202 once the flow accepted the card; its errors
        // are generic HTTP, so the default classification applies.
        response.classify()
    }

    async fn check(&self) -> Result<(), DeliveryError> {
        self.http.check(&self.url).await
    }
}
