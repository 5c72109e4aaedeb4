//! `--about`: capabilities and every setting, as JSON (Meltano) or Markdown.

use serde_json::json;

use crate::config::settings::{SETTINGS, SettingKind};

/// Renders the about text.
pub fn render(as_json: bool) -> String {
    let settings: Vec<_> = SETTINGS
        .iter()
        .map(|s| {
            let mut v = json!({
                "name": s.name,
                "type": s.kind.meltano(),
                "default": s.default,
                "description": s.description,
                "aliases": s.aliases,
                "sensitive": s.secret,
            });
            if let SettingKind::Options(opts) = s.kind {
                v["options"] = json!(opts);
            }
            v
        })
        .collect();
    let about = json!({
        "name": "target-inlet",
        "description": env!("CARGO_PKG_DESCRIPTION"),
        "version": env!("CARGO_PKG_VERSION"),
        "capabilities": ["about", "batch", "validate-records"],
        "settings": settings,
    });
    if as_json {
        return serde_json::to_string_pretty(&about).unwrap_or_default() + "\n";
    }
    let mut md = format!(
        "# target-inlet {}\n\n{}\n\nCapabilities: about, batch, validate-records\n\n| setting | type | default | description |\n|---|---|---|---|\n",
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_DESCRIPTION")
    );
    for s in SETTINGS {
        let kind = match s.kind {
            SettingKind::Options(o) => o.join(" / "),
            k => k.meltano().to_string(),
        };
        let aliases = if s.aliases.is_empty() {
            String::new()
        } else {
            format!(" (also: {})", s.aliases.join(", "))
        };
        md.push_str(&format!(
            "| `{}`{aliases} | {kind} | {} | {} |\n",
            s.name, s.default, s.description
        ));
    }
    md
}
