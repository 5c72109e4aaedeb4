//! TLS to the source, with libpq's `sslmode` meanings (rustls, ring):
//!
//! | sslmode | encrypted | certificate checked |
//! |---|---|---|
//! | `disable` | no | — |
//! | `prefer` (default) | when the server offers it | no |
//! | `require` | yes, or the connection fails | no |
//! | `verify-ca` | yes | signed by a trusted root |
//! | `verify-full` | yes | signed by a trusted root, and names the host |
//!
//! Trusted roots: `sslrootcert` (a PEM file), else `~/.postgresql/root.crt`
//! when it exists, else the system's roots. `allow` is read as `prefer`.
//! `sslmode` and `sslrootcert` come from the URL (or `key=value` string),
//! else from `PGSSLMODE` / `PGSSLROOTCERT`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, unverified.
    #[default]
    Prefer,
    /// TLS always, unverified.
    Require,
    /// TLS, the chain verified.
    VerifyCa,
    /// TLS, the chain and the host name verified.
    VerifyFull,
}

impl SslMode {
    /// Parses libpq's spelling.
    pub fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// What tokio-postgres is told: whether TLS may be skipped.
    pub fn driver(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as D;
        match self {
            SslMode::Disable => D::Disable,
            SslMode::Prefer => D::Prefer,
            _ => D::Require,
        }
    }
}

/// Why TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The root certificate file cannot be read.
    #[error(
        "sslrootcert {path}: {cause}; give a PEM file of the CA that signed the server's certificate"
    )]
    RootCert {
        /// The file.
        path: String,
        /// Why.
        cause: String,
    },
    /// No root to verify against.
    #[error("sslmode={0} needs trusted roots, and none were found: set sslrootcert=FILE (PEM)")]
    NoRoots(&'static str),
    /// rustls refused the settings.
    #[error("setting up TLS: {0}")]
    Config(#[from] rustls::Error),
}

/// A connector for `mode`, trusting `root_cert` (or the defaults).
pub fn connector(
    mode: SslMode,
    root_cert: Option<&Path>,
    home: Option<&Path>,
) -> Result<MakeRustlsConnect, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(Verifier {
            chain: None,
            provider,
        }),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = Arc::new(roots(mode, root_cert, home)?);
            let chain = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
                .build()
                .map_err(|e| TlsError::Config(rustls::Error::General(e.to_string())))?;
            match mode {
                SslMode::VerifyFull => chain,
                _ => Arc::new(Verifier {
                    chain: Some(chain),
                    provider,
                }),
            }
        }
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn roots(
    mode: SslMode,
    root_cert: Option<&Path>,
    home: Option<&Path>,
) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    let default = home.map(|h| h.join(".postgresql/root.crt"));
    let file: Option<PathBuf> = match root_cert {
        Some(p) => Some(p.to_path_buf()),
        None => default.filter(|p| p.is_file()),
    };
    if let Some(path) = file {
        let shown = path.display().to_string();
        let bad = |cause: String| TlsError::RootCert {
            path: shown.clone(),
            cause,
        };
        let certs = CertificateDer::pem_file_iter(&path).map_err(|e| bad(e.to_string()))?;
        for c in certs {
            let c = c.map_err(|e| bad(e.to_string()))?;
            store.add(c).map_err(|e| bad(e.to_string()))?;
        }
        if store.is_empty() {
            return Err(bad("no certificate in it".into()));
        }
        return Ok(store);
    }
    for c in rustls_native_certs::load_native_certs().certs {
        let _ = store.add(c);
    }
    if store.is_empty() {
        return Err(TlsError::NoRoots(match mode {
            SslMode::VerifyCa => "verify-ca",
            _ => "verify-full",
        }));
    }
    Ok(store)
}

/// Checks the server's certificate as the mode asks: not at all (`prefer`,
/// `require`: encrypted, any certificate, as libpq does), the chain only
/// (`verify-ca`), or chain and name (`verify-full`, rustls' own verifier).
/// The handshake's signatures are checked in every mode.
#[derive(Debug)]
struct Verifier {
    /// None: any certificate.
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `url` without its `sslmode` and `sslrootcert` (which the driver does not
/// know in all their forms), and their values.
pub fn take_ssl_params(url: &str) -> (String, Option<String>, Option<String>) {
    let (mut mode, mut root) = (None, None);
    let mut take = |k: &str, v: &str| match k {
        "sslmode" => {
            mode = Some(v.to_string());
            true
        }
        "sslrootcert" => {
            root = Some(v.to_string());
            true
        }
        _ => false,
    };
    let rest = if url.contains("://") {
        match url.split_once('?') {
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|kv| {
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        !take(
                            k,
                            &percent_encoding::percent_decode_str(v).decode_utf8_lossy(),
                        )
                    })
                    .collect();
                match kept.is_empty() {
                    true => base.to_string(),
                    false => format!("{base}?{}", kept.join("&")),
                }
            }
            None => url.to_string(),
        }
    } else {
        url.split_whitespace()
            .filter(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                !take(k.trim(), v.trim().trim_matches('\''))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    (rest, mode, root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_parameters_are_taken_out_of_urls_and_key_value_strings() {
        let (u, m, r) = take_ssl_params(
            "postgresql://a@h:5/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem",
        );
        assert_eq!(u, "postgresql://a@h:5/db?application_name=x");
        assert_eq!(m.as_deref(), Some("verify-full"));
        assert_eq!(r.as_deref(), Some("/tmp/ca.pem"));
        let (u, m, r) = take_ssl_params("host=h sslmode=require dbname=d");
        assert_eq!(
            (u.as_str(), m.as_deref(), r),
            ("host=h dbname=d", Some("require"), None)
        );
        let (u, m, _) = take_ssl_params("postgresql://a@h/db?sslmode=disable");
        assert_eq!(
            (u.as_str(), m.as_deref()),
            ("postgresql://a@h/db", Some("disable"))
        );
        assert_eq!(SslMode::parse("verify-ca"), Some(SslMode::VerifyCa));
        assert_eq!(SslMode::parse("allow"), Some(SslMode::Prefer));
        assert_eq!(SslMode::parse("sometimes"), None);
    }

    #[test]
    fn a_root_file_that_is_not_pem_is_named() {
        let dir = std::env::temp_dir().join(format!("inlet-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("ca.pem");
        std::fs::write(&f, "not a certificate").unwrap();
        let e = connector(SslMode::VerifyFull, Some(&f), None)
            .err()
            .unwrap();
        assert!(e.to_string().contains("ca.pem"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
