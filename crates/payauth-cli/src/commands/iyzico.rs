//! `payauth iyzico …`.

use std::io::Read as _;

use clap::{Args, Subcommand};
use payauth_core::{Error, ErrorKind};
use payauth_iyzico::iyzwsv2;

use super::Output;
use crate::failure::Failure;
use crate::output::{print_json, say};
use crate::secrets::IyzicoSecretKey;
use crate::vars;

#[derive(Debug, Subcommand)]
pub(crate) enum IyzicoCommand {
    /// Print the IYZWSv2 headers for a request, to compare with what your
    /// code sends when iyzico answers errorCode 1000 (invalid signature).
    Sign(SignArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The merchant API key.
    #[arg(long, env = vars::IYZICO_API_KEY)]
    api_key: String,
    #[command(flatten)]
    secret_key: IyzicoSecretKey,
    /// The random key; a fresh one from the OS CSPRNG when absent.
    #[arg(long)]
    random_key: Option<String>,
    /// The request path, e.g. `/v1/pay-with-iyzico/...`; a full URL or a
    /// query string is accepted and reduced to the path that is signed.
    #[arg(long)]
    path: String,
    /// The exact request body as sent; `-` reads it from standard input.
    #[arg(long, default_value = "")]
    body: String,
}

/// The largest request body `--body -` reads: 16 MiB.
const MAX_BODY: u64 = 16 * 1024 * 1024;

pub(crate) fn run(command: IyzicoCommand, output: Output) -> Result<(), Failure> {
    match command {
        IyzicoCommand::Sign(args) => sign(args, output),
    }
}

fn sign(args: SignArgs, output: Output) -> Result<(), Failure> {
    let path = signed_path(&args.path).map_err(Failure::Usage)?;
    let random_key = match args.random_key {
        Some(key) if key.is_empty() => {
            return Err(Failure::Usage("--random-key is empty".to_owned()));
        }
        // It is sent as the `x-iyzi-rnd` header: visible ASCII only.
        Some(key) if !key.bytes().all(|b| b.is_ascii_graphic()) => {
            return Err(Failure::Usage(
                "--random-key holds a character a header cannot (only visible ASCII)".to_owned(),
            ));
        }
        Some(key) => key,
        None => iyzwsv2::random_key().map_err(|e| Failure::from(e).context("a random key"))?,
    };
    if args.body == "-" {
        // Before the secret is read, so a secret from `-` too is refused
        // as a usage error.
        crate::secrets::claim_stdin()?;
    }
    let secret_key = args.secret_key.load()?;
    let body = if args.body == "-" {
        let mut buffer = Vec::new();
        std::io::stdin()
            .take(MAX_BODY + 1)
            .read_to_end(&mut buffer)
            .map_err(|e| {
                Error::new(ErrorKind::Config)
                    .with_description(format!("cannot read the body from stdin: {}", e.kind()))
            })?;
        if buffer.len() as u64 > MAX_BODY {
            return Err(Failure::Usage(format!(
                "the body on standard input is larger than {MAX_BODY} bytes"
            )));
        }
        buffer
    } else {
        args.body.into_bytes()
    };
    let signature = iyzwsv2::signature(&secret_key, &random_key, &path, &body);
    let authorization =
        iyzwsv2::authorization(&args.api_key, &secret_key, &random_key, &path, &body);
    let authorization = authorization
        .to_str()
        .map_err(|e| Failure::Usage(format!("the header is not text: {e}")))?;
    if output.json {
        let value = serde_json::json!({
            "authorization": authorization,
            "x-iyzi-rnd": random_key,
            "signature": signature,
            "signed_path": path,
            "signed_body_bytes": body.len(),
        });
        print_json(&value);
    } else {
        say!("Authorization: {authorization}");
        say!("{}: {random_key}", iyzwsv2::RANDOM_KEY_HEADER);
        say!(
            "# signature {signature} over random key + {path} + {} body bytes",
            body.len()
        );
    }
    Ok(())
}

/// The part of `--path` that IYZWSv2 signs: the path, without scheme, host
/// or query string.
fn signed_path(input: &str) -> Result<String, String> {
    if input.starts_with("http://") || input.starts_with("https://") {
        let url =
            reqwest::Url::parse(input).map_err(|e| format!("--path is not a valid URL: {e}"))?;
        return Ok(url.path().to_owned());
    }
    let path = input.split(['?', '#']).next().unwrap_or_default();
    if crate::output::clean(path) != path || path.contains(' ') {
        Err("--path holds a space, control or bidi character: percent-encode it".to_owned())
    } else if path.starts_with('/') {
        Ok(path.to_owned())
    } else {
        Err(format!("--path must start with '/', got {path:?}"))
    }
}
