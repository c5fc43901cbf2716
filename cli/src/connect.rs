//! Opening the store the command line names: a SQLite file or a Postgres database.

use crate::args::StoreArgs;
use crate::error::CliError;
use crate::progress;
use duraflow::Store;
use std::time::Duration;

/// How long connecting to Postgres may take before the CLI gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Opens the store: `--db FILE` (which must exist), else `--postgres URL` / `DURAFLOW_POSTGRES_URL`.
pub async fn open(args: &StoreArgs) -> Result<Store, CliError> {
    if let Some(path) = &args.db {
        let shown = path.display();
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CliError::new(format!(
                    "no file at `{shown}`; give the path of an existing duraflow store (a program \
                     creates it with `Store::sqlite(\"{shown}\")`)"
                )))
            }
            Err(e) => {
                return Err(CliError::new(format!(
                    "cannot read `{shown}`: {e}; check the path and its permissions"
                )))
            }
            Ok(m) if m.is_dir() => {
                return Err(CliError::new(format!(
                    "`{shown}` is a directory; give the path of the store's SQLite file"
                )))
            }
            // SQLite takes an empty file for a new database: the CLI does not make one.
            Ok(m) if m.len() == 0 => {
                return Err(CliError::new(format!(
                    "`{shown}` is empty, not a duraflow store; give the path of the file a \
                     program opened with `Store::sqlite(..)`"
                )))
            }
            Ok(_) => {}
        }
        return Store::sqlite(path).map_err(|e| {
            CliError::new(format!(
                "cannot open `{shown}` as a duraflow store: {}",
                crate::error::with_causes(&e)
            ))
        });
    }
    let Some(url) = &args.postgres else {
        return Err(CliError::usage(
            "say which store to open: `--db app.db` (a SQLite file) or `--postgres URL` (or set \
             DURAFLOW_POSTGRES_URL)",
        ));
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(CliError::usage(format!(
            "`{}` is not a Postgres URL; write it as postgres://user[:password]@host[:port]/database",
            redact(url)
        )));
    }
    let spinner = progress::spinner(format!("connecting to {}", redact(url)));
    let connect = async {
        match &args.postgres_schema {
            Some(schema) => Store::postgres_in_schema(url, schema).await,
            None => Store::postgres(url).await,
        }
    };
    let result = tokio::time::timeout(CONNECT_TIMEOUT, connect).await;
    spinner.finish_and_clear();
    match result {
        Err(_) => Err(CliError::new(format!(
            "no answer from {} within {}s; check the host and port, and that the server runs",
            redact(url),
            CONNECT_TIMEOUT.as_secs()
        ))),
        Ok(Err(e)) => Err(CliError::new(format!(
            "cannot open the Postgres store at {}: {}; check the URL, the server and the credentials",
            redact(url),
            crate::error::with_causes(&e)
        ))),
        Ok(Ok(store)) => Ok(store),
    }
}

/// The URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(
            redact("postgres://ann:secret@db:5432/x"),
            "postgres://ann:***@db:5432/x"
        );
        assert_eq!(redact("postgres://ann@db/x"), "postgres://ann@db/x");
        assert_eq!(redact("postgres://db/x"), "postgres://db/x");
    }
}
