//! Connecting: a `postgresql://` URL (or a LakeXpress auth entry), the
//! password from the URL, `PGPASSWORD`, `~/.pgpass` or the auth file, and
//! messages that never show it.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls::{self, SslMode};
use super::{Cause, PgError};

/// Attempts at reaching an unreachable server before giving up.
const CONNECT_ATTEMPTS: u32 = 3;

/// How to reach the source database; its `Display` shows no password.
#[derive(Clone)]
pub struct Source {
    config: Config,
    shown: String,
    /// TLS as `sslmode` asks (None: plain TCP).
    tls: Option<MakeRustlsConnect>,
    ssl: SslMode,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Source {
    /// Parses `url` (`postgresql://user[:password]@host:port/db?sslmode=…`, or
    /// libpq's `key=value` form); a missing password comes from `env`'s
    /// `PGPASSWORD`, then the pgpass file.
    pub fn parse(
        url: &str,
        env: &[(String, String)],
        pgpass: Option<&Path>,
    ) -> Result<Source, PgError> {
        let (url, mode, root) = tls::take_ssl_params(url);
        let mut config =
            Config::from_str(&url).map_err(|e| PgError::Url(redact_url(&url), e.to_string()))?;
        let mode = mode.or_else(|| var(env, "PGSSLMODE"));
        let ssl = match mode.as_deref() {
            None => SslMode::default(),
            Some(m) => SslMode::parse(m).ok_or_else(|| {
                PgError::Url(
                    redact_url(&url),
                    format!(
                        "sslmode '{m}' is not one of disable, allow, prefer, require, verify-ca, verify-full"
                    ),
                )
            })?,
        };
        let root = root.or_else(|| var(env, "PGSSLROOTCERT"));
        let home = var(env, "HOME").map(std::path::PathBuf::from);
        if config.get_user().is_none() {
            let user = var(env, "PGUSER")
                .or_else(|| var(env, "USER"))
                .unwrap_or_else(|| "postgres".into());
            config.user(&user);
        }
        if config.get_hosts().is_empty() {
            config.host(var(env, "PGHOST").unwrap_or_else(|| "localhost".into()));
        }
        if config.get_dbname().is_none() {
            let db = var(env, "PGDATABASE")
                .unwrap_or_else(|| config.get_user().unwrap_or_default().to_string());
            config.dbname(&db);
        }
        if config.get_password().is_none() {
            if let Some(p) = var(env, "PGPASSWORD") {
                config.password(p);
            } else if let Some(p) = pgpass.and_then(|f| pgpass_lookup(f, &config)) {
                config.password(p);
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("inlet export");
        Source::with_tls(config, ssl, root.as_deref().map(Path::new), home.as_deref())
    }

    fn with_tls(
        mut config: Config,
        ssl: SslMode,
        root: Option<&Path>,
        home: Option<&Path>,
    ) -> Result<Source, PgError> {
        config.ssl_mode(ssl.driver());
        let shown = shown(&config);
        let tls = match ssl {
            SslMode::Disable => None,
            _ => Some(
                tls::connector(ssl, root, home).map_err(|source| PgError::Tls {
                    db: shown.clone(),
                    source,
                })?,
            ),
        };
        Ok(Source {
            config,
            shown,
            tls,
            ssl,
        })
    }

    /// The `sslmode` connections use.
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl
    }

    /// A LakeXpress auth entry's `info` (`username`, `password`, `server`,
    /// `port`, `database`), already `$env{…}`-expanded.
    pub fn from_auth(info: &serde_json::Map<String, serde_json::Value>) -> Result<Source, PgError> {
        let get = |k: &str| match info.get(k) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let mut config = Config::new();
        config.host(get("server").unwrap_or_else(|| "localhost".into()));
        if let Some(p) = get("port") {
            let port = p
                .parse()
                .map_err(|_| PgError::Url(format!("port {p}"), "not a port number".into()))?;
            config.port(port);
        }
        config.user(get("username").unwrap_or_else(|| "postgres".into()));
        if let Some(p) = get("password") {
            config.password(p);
        }
        config.dbname(get("database").unwrap_or_else(|| "postgres".into()));
        config.connect_timeout(Duration::from_secs(10));
        config.application_name("inlet export");
        let ssl = match get("sslmode") {
            None => SslMode::default(),
            Some(m) => SslMode::parse(&m).ok_or_else(|| {
                PgError::Url(format!("sslmode {m}"), "not an sslmode of libpq".into())
            })?,
        };
        let root = get("sslrootcert").map(std::path::PathBuf::from);
        Source::with_tls(config, ssl, root.as_deref(), None)
    }

    /// A new connection (its driver runs on the current runtime). An
    /// unreachable server is tried [`CONNECT_ATTEMPTS`] times; a refused
    /// login is not retried.
    pub async fn connect(&self) -> Result<Client, PgError> {
        let mut wait = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            match self.connect_once().await {
                Ok(client) => return Ok(client),
                Err(e)
                    if e.as_db_error().is_none() && !is_tls(&e) && attempt < CONNECT_ATTEMPTS =>
                {
                    tracing::warn!(
                        "cannot reach {} (attempt {attempt} of {CONNECT_ATTEMPTS}): {e}; retrying",
                        self.shown
                    );
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(self.connect_error(e)),
            }
        }
    }

    async fn connect_once(&self) -> Result<Client, tokio_postgres::Error> {
        let client = match &self.tls {
            None => {
                let (client, conn) = self.config.connect(NoTls).await?;
                tokio::spawn(drive(conn));
                client
            }
            Some(tls) => {
                let (client, conn) = self.config.connect(tls.clone()).await?;
                tokio::spawn(drive(conn));
                client
            }
        };
        Ok(client)
    }

    fn connect_error(&self, e: tokio_postgres::Error) -> PgError {
        let db = self.shown.clone();
        if is_tls(&e) {
            return PgError::Handshake {
                db,
                cause: Cause(e),
            };
        }
        match e.code() {
            Some(c)
                if *c == SqlState::INVALID_PASSWORD
                    || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
            {
                PgError::Login {
                    db,
                    cause: Cause(e),
                }
            }
            Some(c) if *c == SqlState::INVALID_CATALOG_NAME => PgError::NoDatabase {
                db,
                cause: Cause(e),
            },
            _ => PgError::Connect {
                db,
                cause: Cause(e),
            },
        }
    }
}

/// Runs a connection's driver until the connection closes.
async fn drive<C: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(conn: C) {
    if let Err(e) = conn.await {
        tracing::debug!("source connection closed: {e}");
    }
}

/// Whether the TLS handshake failed (a certificate refused, no TLS offered).
fn is_tls(e: &tokio_postgres::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(x) = src {
        if x.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = x.downcast_ref::<std::io::Error>()
            && io.get_ref().is_some_and(|i| i.is::<rustls::Error>())
        {
            return true;
        }
        src = x.source();
    }
    false
}

fn var(env: &[(String, String)], k: &str) -> Option<String> {
    env.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

fn host_of(config: &Config) -> String {
    match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    }
}

fn port_of(config: &Config) -> u16 {
    config.get_ports().first().copied().unwrap_or(5432)
}

/// `postgresql://user@host:port/db`: what messages show of a source.
fn shown(config: &Config) -> String {
    format!(
        "postgresql://{}@{}:{}/{}",
        config.get_user().unwrap_or_default(),
        host_of(config),
        port_of(config),
        config.get_dbname().unwrap_or_default()
    )
}

/// A URL (or libpq `key=value` string) with any password replaced, for a
/// source that does not parse. Done by hand: a URL that does not parse as a
/// URL must not leak either.
pub fn redact_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..auth_end].rfind('@') {
            let user = &rest[..at];
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            let has_password = rest[..at].contains(':');
            return format!(
                "{}{user}{}{}",
                &url[..scheme_end + 3],
                if has_password { ":***" } else { "" },
                &rest[at..]
            );
        }
        return url.to_string();
    }
    url.split_whitespace()
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => "password=***".to_string(),
            _ => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `url` without its password (userinfo, `password=` query parameter or
/// key), everything else kept: what a run log may store and a resumed run
/// parses again. True when there was a password.
pub fn without_password(url: &str) -> (String, bool) {
    let is_password = |kv: &str| {
        kv.split_once('=')
            .is_some_and(|(k, _)| k.eq_ignore_ascii_case("password"))
    };
    let Some(scheme_end) = url.find("://") else {
        let kept: Vec<&str> = url
            .split_whitespace()
            .filter(|kv| !is_password(kv))
            .collect();
        let had = kept.len() != url.split_whitespace().count();
        return (kept.join(" "), had);
    };
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let rest = &head[scheme_end + 3..];
    let auth_end = rest.find('/').unwrap_or(rest.len());
    let mut had = false;
    let mut out = head[..scheme_end + 3].to_string();
    match rest[..auth_end].rfind('@') {
        Some(at) => {
            let user = &rest[..at];
            if let Some((u, _)) = user.split_once(':') {
                had = true;
                out.push_str(u);
            } else {
                out.push_str(user);
            }
            out.push_str(&rest[at..]);
        }
        None => out.push_str(rest),
    }
    if let Some(q) = query {
        let params: Vec<&str> = q.split('&').filter(|kv| !is_password(kv)).collect();
        had |= params.len() != q.split('&').count();
        if !params.is_empty() {
            out.push('?');
            out.push_str(&params.join("&"));
        }
    }
    (out, had)
}

/// The password for `config` in a pgpass file (`host:port:db:user:password`,
/// `*` matches anything, `\:` and `\\` escape).
fn pgpass_lookup(file: &Path, config: &Config) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let want = [
        host_of(config),
        port_of(config).to_string(),
        config.get_dbname().unwrap_or_default().to_string(),
        config.get_user().unwrap_or_default().to_string(),
    ];
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() != 5 {
            continue;
        }
        let host_ok =
            |f: &str, w: &str| f == "*" || f == w || (f == "localhost" && w == "127.0.0.1");
        if host_ok(&fields[0], &want[0])
            && fields[1..4]
                .iter()
                .zip(&want[1..])
                .all(|(f, w)| f == "*" || f == w)
        {
            return Some(fields[4].clone());
        }
    }
    None
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(n), Some(s)) = (chars.next(), out.last_mut()) {
                    s.push(n);
                }
            }
            ':' if out.len() < 5 => out.push(String::new()),
            c => {
                if let Some(s) = out.last_mut() {
                    s.push(c);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_url_keeps_everything_but_the_password() {
        assert_eq!(
            without_password("postgresql://u:s3cret@h:5432/db?sslmode=require&password=x"),
            ("postgresql://u@h:5432/db?sslmode=require".to_string(), true)
        );
        assert_eq!(
            without_password("postgresql://u@h/db"),
            ("postgresql://u@h/db".to_string(), false)
        );
        assert_eq!(
            without_password("host=h password=s3cret dbname=d"),
            ("host=h dbname=d".to_string(), true)
        );
    }

    #[test]
    fn the_password_never_shows() {
        let s = Source::parse("postgresql://app:s3cret@db.example:6543/sales", &[], None).unwrap();
        assert_eq!(s.to_string(), "postgresql://app@db.example:6543/sales");
        assert!(!format!("{s:?}").contains("s3cret"));
        assert_eq!(
            redact_url("postgresql://app:s3cret@h/db"),
            "postgresql://app:***@h/db"
        );
        assert_eq!(redact_url("host=h password=s3cret"), "host=h password=***");
        let e = Source::parse("postgresql://app:s3cret@h:notaport/db", &[], None).unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn passwords_from_the_environment_and_pgpass() {
        let env = vec![("PGPASSWORD".to_string(), "fromenv".to_string())];
        let s = Source::parse("postgresql://app@h/db", &env, None).unwrap();
        assert_eq!(s.config.get_password(), Some(&b"fromenv"[..]));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pgpass");
        std::fs::write(
            &f,
            "# comment\nother:5432:*:app:no\nh:5432:db:app:pa\\:ss\n",
        )
        .unwrap();
        let s = Source::parse("postgresql://app@h/db", &[], Some(&f)).unwrap();
        assert_eq!(s.config.get_password(), Some(&b"pa:ss"[..]));
        // the URL's own password wins
        let s = Source::parse("postgresql://app:url@h/db", &env, Some(&f)).unwrap();
        assert_eq!(s.config.get_password(), Some(&b"url"[..]));
    }

    #[test]
    fn sslmode_comes_from_the_url_or_pgsslmode_and_is_checked() {
        let env = [("PGSSLMODE".to_string(), "disable".to_string())];
        let s = Source::parse("postgresql://app@h/db?sslmode=verify-ca", &env, None);
        assert_eq!(s.map(|s| s.ssl_mode()).ok(), Some(SslMode::VerifyCa));
        let s = Source::parse("postgresql://app@h/db", &env, None).unwrap();
        assert_eq!(s.ssl_mode(), SslMode::Disable);
        let s = Source::parse("postgresql://app@h/db", &[], None).unwrap();
        assert_eq!(s.ssl_mode(), SslMode::Prefer);
        let e = Source::parse("postgresql://app:pw@h/db?sslmode=always", &[], None).unwrap_err();
        assert!(
            e.to_string().contains("verify-full") && !e.to_string().contains("pw"),
            "{e}"
        );
    }
}
