//! clarion-teams: posts each notification to a Microsoft Teams channel or
//! chat through a **Workflows** webhook ("When a Teams webhook request is
//! received" → "Post card in a chat or channel"). Office 365 connectors and
//! their `MessageCard` were retired on 2026-03-31; Workflows take Adaptive
//! Cards only.
//!
//! ```toml
//! [channels.ops-teams]
//! kind = "teams"
//! url = "${TEAMS_WORKFLOW_URL}"      # https://…/workflows/…/invoke?…&sig=…; a secret
//!
//! [channels.ops-teams.http]          # optional: timeout, proxy, tls_ca_file …
//! timeout = "10s"
//! ```
//!
//! **What it sends**: `{"type": "message", "attachments": [one
//! "application/vnd.microsoft.card.adaptive" attachment]}` holding an
//! Adaptive Card 1.4: a title with the severity and kind in the severity's
//! colour (critical `Attention`, warning `Warning`, info `Accent`), the
//! subject, and a fact set (subject, owner, labels, each of the kind's
//! data, when it occurred, the notification id).
//!
//! **Answers**: `202 Accepted` (or any 2xx) sent; `429` (Power Automate's
//! throttling), and `503` with `Retry-After`, throttled; `408`, `425`,
//! other `5xx`, timeouts and connection errors retryable; `410` gone; other
//! `4xx` (a card the flow rejects, a deleted flow) permanent. The URL's
//! signature is never shown beyond its origin.
//!
//! Link it with the `clarion` facade's `teams` feature (on by default) or
//! `use clarion_teams as _;`.

mod card;
mod channel;

pub use channel::{TeamsChannel, TeamsConfig};

clarion_core::register_channel! {
    kind: "teams",
    description: "Posts an Adaptive Card to a Microsoft Teams Workflows webhook.",
    config: TeamsConfig,
    example: "url = \"https://prod-00.westeurope.logic.azure.com/workflows/0000/triggers/manual/paths/invoke?api-version=2016-06-01&sig=XXXX\"\n",
    build: TeamsChannel::from_config,
}
