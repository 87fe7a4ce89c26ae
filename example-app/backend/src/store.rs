//! The few S3 calls the backend makes itself, signed with rusty-s3 and sent
//! with reqwest. Errors carry only a status and the S3 error code: never the
//! request URL, whose query string holds a signature.

use std::time::Duration;

use rusty_s3::actions::{
    AbortMultipartUpload, CompleteMultipartUpload, CompleteMultipartUploadResponse,
    CreateMultipartUpload, HeadObject, PutObject, UploadPart,
};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use crate::config::{BackendError, StoreTarget};

/// Validity of the URLs the backend signs for its own, immediate requests.
const SELF_SIGN_TTL: Duration = Duration::from_secs(300);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Completing copies every part into the object, which takes a while for
/// large files on file-backed stores.
const COMPLETE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Error bodies are only read for their code, so there is no need for more.
const MAX_ERROR_BODY: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) enum StoreFailure {
    /// The store answered with an error (`code` from its XML body, if any).
    Rejected { status: u16, code: Option<String> },
    /// The request did not get a usable answer.
    Unreachable(String),
    /// The store answered 2xx with a body we could not make sense of.
    BadResponse(&'static str),
}

impl StoreFailure {
    /// A short description for clients and logs.
    pub(crate) fn describe(&self) -> String {
        match self {
            StoreFailure::Rejected {
                status,
                code: Some(code),
            } => {
                format!("store answered {status} {code}")
            }
            StoreFailure::Rejected { status, code: None } => format!("store answered {status}"),
            StoreFailure::Unreachable(why) => format!("store unreachable: {why}"),
            StoreFailure::BadResponse(why) => format!("unexpected store response: {why}"),
        }
    }

    pub(crate) fn code(&self) -> Option<&str> {
        match self {
            StoreFailure::Rejected { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            StoreFailure::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// What a HEAD tells about an object.
pub(crate) struct ObjectHead {
    pub etag: String,
    /// `None` when the store did not say.
    pub size: Option<u64>,
}

pub(crate) struct Store {
    endpoint: url::Url,
    bucket: Bucket,
    credentials: Credentials,
    http: reqwest::Client,
}

impl Store {
    pub(crate) fn new(target: &StoreTarget, roots_der: &[Vec<u8>]) -> Result<Self, BackendError> {
        let endpoint = &target.endpoint;
        if endpoint.query().is_some() || endpoint.fragment().is_some() {
            return Err(BackendError::BadEndpoint(
                "the store endpoint must not have a query or fragment".to_owned(),
            ));
        }
        if !endpoint.username().is_empty() || endpoint.password().is_some() {
            return Err(BackendError::BadEndpoint(
                "the store endpoint must not embed credentials".to_owned(),
            ));
        }
        let bucket = Bucket::new(
            endpoint.clone(),
            UrlStyle::Path,
            target.bucket.clone(),
            target.region.clone(),
        )
        .map_err(|e| BackendError::BadEndpoint(format!("{e:?}")))?;
        let credentials = Credentials::new(target.access_key.clone(), target.secret_key.clone());
        let mut builder = reqwest::Client::builder();
        for der in roots_der {
            let cert = reqwest::Certificate::from_der(der)
                .map_err(|e| BackendError::HttpClient(e.to_string()))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| BackendError::HttpClient(e.without_url().to_string()))?;
        Ok(Self {
            endpoint: endpoint.clone(),
            bucket,
            credentials,
            http,
        })
    }

    pub(crate) async fn create_multipart_upload(&self, key: &str) -> Result<String, StoreFailure> {
        let url = CreateMultipartUpload::new(&self.bucket, Some(&self.credentials), key)
            .sign(SELF_SIGN_TTL);
        let res = self
            .http
            .post(url)
            .body(Vec::new())
            .send()
            .await
            .map_err(unreachable)?;
        let body = success_body(res).await?;
        let parsed = CreateMultipartUpload::parse_response(body.trim_start()).map_err(|_| {
            StoreFailure::BadResponse("CreateMultipartUpload result is not valid XML")
        })?;
        let upload_id = parsed.upload_id();
        if upload_id.is_empty() {
            return Err(StoreFailure::BadResponse("empty upload id"));
        }
        Ok(upload_id.to_owned())
    }

    /// The store endpoint (as the backend reaches it).
    pub(crate) fn endpoint(&self) -> &url::Url {
        &self.endpoint
    }

    /// The bucket as seen from `base` (the store's address for clients), or
    /// the backend's own view. The signature covers the host, so a URL has
    /// to be signed for the address the client will send it to.
    fn bucket_at(&self, base: Option<&url::Url>) -> std::borrow::Cow<'_, Bucket> {
        let Some(base) = base else {
            return std::borrow::Cow::Borrowed(&self.bucket);
        };
        match Bucket::new(
            base.clone(),
            UrlStyle::Path,
            self.bucket.name().to_owned(),
            self.bucket.region().to_owned(),
        ) {
            Ok(b) => std::borrow::Cow::Owned(b),
            // Checked when the options were validated; the store's own
            // address is the safe fallback.
            Err(_) => std::borrow::Cow::Borrowed(&self.bucket),
        }
    }

    pub(crate) fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        part: u16,
        ttl: Duration,
        base: Option<&url::Url>,
    ) -> url::Url {
        let bucket = self.bucket_at(base);
        UploadPart::new(&bucket, Some(&self.credentials), key, part, upload_id).sign(ttl)
    }

    /// Returns the ETag of the new object.
    pub(crate) async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        etags: &[&str],
    ) -> Result<String, StoreFailure> {
        let action = CompleteMultipartUpload::new(
            &self.bucket,
            Some(&self.credentials),
            key,
            upload_id,
            etags.iter().copied(),
        );
        let url = action.sign(SELF_SIGN_TTL);
        let xml = action.body();
        let res = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/xml")
            .timeout(COMPLETE_TIMEOUT)
            .body(xml)
            .send()
            .await
            .map_err(unreachable)?;
        let body = success_body(res).await?;
        // S3 may answer 200 first and report a failure in the body later, and
        // pads the body with whitespace while it works.
        let body = body.trim_start();
        if body.contains("<Error>") {
            return Err(StoreFailure::Rejected {
                status: 200,
                code: error_code(body),
            });
        }
        let parsed = CompleteMultipartUploadResponse::parse(body).map_err(|_| {
            StoreFailure::BadResponse("CompleteMultipartUpload result is not valid XML")
        })?;
        Ok(parsed.etag().to_owned())
    }

    /// A URL that stores the whole object in one PUT: how empty files are
    /// uploaded, since some stores refuse an empty part.
    pub(crate) fn presign_put_object(
        &self,
        key: &str,
        ttl: Duration,
        base: Option<&url::Url>,
    ) -> url::Url {
        let bucket = self.bucket_at(base);
        PutObject::new(&bucket, Some(&self.credentials), key).sign(ttl)
    }

    /// `Ok(Some(etag))` if the object exists, `Ok(None)` if it does not.
    pub(crate) async fn head_etag(&self, key: &str) -> Result<Option<String>, StoreFailure> {
        Ok(self.head(key).await?.map(|h| h.etag))
    }

    /// The object's ETag and size, `Ok(None)` if there is no such object.
    pub(crate) async fn head(&self, key: &str) -> Result<Option<ObjectHead>, StoreFailure> {
        let url = HeadObject::new(&self.bucket, Some(&self.credentials), key).sign(SELF_SIGN_TTL);
        let res = self.http.head(url).send().await.map_err(unreachable)?;
        let status = res.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(StoreFailure::Rejected {
                status: status.as_u16(),
                code: None,
            });
        }
        let etag = res
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let size = res
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        Ok(Some(ObjectHead { etag, size }))
    }

    pub(crate) async fn abort(&self, key: &str, upload_id: &str) -> Result<(), StoreFailure> {
        let url = AbortMultipartUpload::new(&self.bucket, Some(&self.credentials), key, upload_id)
            .sign(SELF_SIGN_TTL);
        let res = self.http.delete(url).send().await.map_err(unreachable)?;
        success_body(res).await.map(drop)
    }
}

fn unreachable(err: reqwest::Error) -> StoreFailure {
    // `without_url` keeps the presigned query string out of the message.
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_body() || err.is_decode() {
        "response body broken"
    } else {
        "request failed"
    };
    StoreFailure::Unreachable(kind.to_owned())
}

/// The body of a 2xx answer, or the failure described by any other.
async fn success_body(res: reqwest::Response) -> Result<String, StoreFailure> {
    let status = res.status();
    if status.is_success() {
        return res.text().await.map_err(unreachable);
    }
    let code = error_code(&read_capped(res).await);
    Err(StoreFailure::Rejected {
        status: status.as_u16(),
        code,
    })
}

async fn read_capped(mut res: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = res.chunk().await {
        buf.extend_from_slice(&chunk);
        if buf.len() > MAX_ERROR_BODY {
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// The `<Code>` of an S3 `<Error>` document, limited to a plain identifier
/// so nothing unexpected is echoed to clients.
pub(crate) fn error_code(body: &str) -> Option<String> {
    if !body.contains("<Error>") {
        return None;
    }
    let start = body.find("<Code>")? + "<Code>".len();
    let len = body[start..].find("</Code>")?;
    let code = &body[start..start + len];
    let plain =
        !code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric());
    Some(if plain {
        code.to_owned()
    } else {
        "UnknownError".to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_error_codes() {
        let body =
            "<?xml version=\"1.0\"?>\n<Error><Code>NoSuchUpload</Code><Message>x</Message></Error>";
        assert_eq!(error_code(body).as_deref(), Some("NoSuchUpload"));
        assert_eq!(
            error_code("<Error><Code>a b</Code></Error>").as_deref(),
            Some("UnknownError")
        );
        assert_eq!(error_code("<CompleteMultipartUploadResult/>"), None);
    }
}
