//! The Slack channel: one incoming-webhook POST per delivery.

use async_trait::async_trait;
use clarion_core::channel::{Channel, Delivery, DeliveryError, Receipt};
use clarion_core::registry::ChannelConfigError;
use clarion_http::{HttpClient, SecretUrl, Templates};
use serde_json::{Value, json};

use crate::{SlackConfig, message};

/// Posts each delivery to one Slack incoming webhook. `Debug` shows the
/// webhook's origin and the template names, never the URL's token.
#[derive(Debug)]
pub struct SlackChannel {
    http: HttpClient,
    url: SecretUrl,
    templates: Templates,
}

impl SlackChannel {
    /// Builds the channel; templates are compiled and tried on a sample
    /// event, and errors name the field (`templates.rotation_failure.blocks`).
    pub fn from_config(config: SlackConfig) -> Result<Self, ChannelConfigError> {
        let http = HttpClient::builder(&config.http)
            .endpoint(&config.url)
            .build()?;
        let mut templates = Templates::default();
        for (kind, t) in &config.templates {
            if let Some(text) = &t.text {
                templates.add(
                    &format!("templates.{kind}.text"),
                    &format!("{kind}.text"),
                    text,
                )?;
            }
            if let Some(blocks) = &t.blocks {
                let (field, name) = (
                    format!("templates.{kind}.blocks"),
                    format!("{kind}.blocks.json"),
                );
                templates.add(&field, &name, blocks)?;
                let sample = templates.render(&name, &clarion_http::sample_delivery());
                let is_array = sample
                    .ok()
                    .and_then(|b| serde_json::from_str::<Value>(&b).ok());
                if !is_array.is_some_and(|b| b.is_array()) {
                    return Err(ChannelConfigError::field(
                        field,
                        "must produce a JSON array of blocks",
                    ));
                }
            }
        }
        Ok(SlackChannel {
            http,
            url: config.url,
            templates,
        })
    }

    /// The exact JSON message [`Channel::deliver`] posts for `delivery`.
    pub fn message(&self, delivery: &Delivery) -> Result<Value, DeliveryError> {
        let kind = delivery.notification.event.kind.as_str();
        let (text_name, blocks_name) = (format!("{kind}.text"), format!("{kind}.blocks.json"));
        let text = match self.templates.contains(&text_name) {
            true => self.templates.render(&text_name, delivery)?,
            false => message::escape(&clarion_http::headline(&delivery.notification.event)),
        };
        let blocks = if self.templates.contains(&blocks_name) {
            let rendered = self.templates.render(&blocks_name, delivery)?;
            serde_json::from_str(&rendered).map_err(|e| DeliveryError::permanent(e.to_string()))?
        } else if self.templates.contains(&text_name) {
            return Ok(json!({ "text": text }));
        } else {
            message::blocks(delivery)
        };
        Ok(json!({ "text": text, "blocks": blocks }))
    }
}

#[async_trait]
impl Channel for SlackChannel {
    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, DeliveryError> {
        // Slack ignores the key; a proxy can drop duplicates by it.
        let request = (self
            .http
            .json_request(&self.url, &self.message(delivery)?)?)
        .header("idempotency-key", delivery.idempotency_key());
        let response = self.http.send(request).await?;
        // Slack answers with a plain error string in the body.
        match (response.status().as_u16(), response.text().trim()) {
            (404, "no_service" | "channel_not_found") | (410, _) => Err(response.gone()),
            (400, _) => Err(response.permanent("Slack refused the message; check the templates")),
            (403, _) => Err(response.permanent("the workspace does not let this webhook post")),
            _ => response.classify(),
        }
    }

    async fn check(&self) -> Result<(), DeliveryError> {
        self.http.check(&self.url).await
    }
}
