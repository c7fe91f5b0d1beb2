//! The S3 store: presigned PUT for uploads up to a threshold, presigned multipart above
//! it, presigned GET for downloads, batch deletes. Single PUTs carry
//! `x-amz-checksum-sha256` in their signed headers, so the store itself refuses bytes
//! that do not match the declared digest; `complete` then reads the checksum back, or
//! hashes the object when the store kept none (multipart).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::types::{
    ChecksumMode, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier,
};
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures::future::BoxFuture;
use futures::FutureExt;
use sha2::{Digest, Sha256};
use verdict_contracts::artifacts::{Sha256Hex, UploadPart, UploadTarget};

use super::{BlobStore, DoomedBlob, NewBlob, UploadPlan, Uploaded};
use crate::config::S3Settings;
use crate::Error;

/// Keys per DeleteObjects call (the S3 maximum).
const DELETE_BATCH: usize = 1000;

pub struct S3Store {
    /// Talks to the store at its internal endpoint, and signs the URLs services use.
    client: Client,
    /// Signs the URLs clients use: the same store, under its public endpoint.
    presigner: Client,
    bucket: String,
    multipart_threshold: u64,
    part_size: u64,
    /// Where new objects go, and the only part of the bucket the sweeper lists.
    key_prefix: String,
}

fn s3_error(what: &'static str, error: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::S3 {
        what,
        source: Box::new(error),
    }
}

/// An S3 client for `settings` at `endpoint` (AWS when `None`): path-style when asked,
/// HTTPS through rustls with ring, checksums only where the API requires them
/// (presigned URLs must not carry a checksum of an empty body).
pub fn client(settings: &S3Settings, endpoint: Option<&str>) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .credentials_provider(Credentials::new(
            settings.access_key.clone(),
            settings.secret_key.clone(),
            None,
            None,
            "verdict",
        ))
        .force_path_style(settings.path_style)
        .http_client(http)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some(endpoint) = endpoint {
        config = config.endpoint_url(endpoint);
    }
    Client::from_conf(config.build())
}

fn headers_of(request: &PresignedRequest) -> BTreeMap<String, String> {
    request
        .headers()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
        .collect()
}

fn presigning(ttl: Duration) -> Result<PresigningConfig, Error> {
    PresigningConfig::expires_in(ttl).map_err(|err| s3_error("presigning", err))
}

impl S3Store {
    pub fn new(settings: &S3Settings) -> Self {
        let public = settings
            .public_endpoint
            .as_ref()
            .or(settings.endpoint.as_ref());
        Self {
            client: client(settings, settings.endpoint.as_deref()),
            presigner: client(settings, public.map(String::as_str)),
            bucket: settings.bucket.clone(),
            multipart_threshold: settings.multipart_threshold,
            part_size: settings.part_size,
            key_prefix: settings.key_prefix.clone(),
        }
    }

    /// The client whose endpoint the upload URLs of `blob` name.
    fn upload_signer(&self, blob: &NewBlob) -> &Client {
        if blob.by_service {
            &self.client
        } else {
            &self.presigner
        }
    }

    async fn single_put(&self, blob: &NewBlob, ttl: Duration) -> Result<UploadPlan, Error> {
        let request = self
            .upload_signer(blob)
            .put_object()
            .bucket(&self.bucket)
            .key(&blob.key)
            .content_type(&blob.content_type)
            .checksum_sha256(STANDARD.encode(blob.sha256.bytes()))
            .presigned(presigning(ttl)?)
            .await
            .map_err(|err| s3_error("presigning a PUT", err))?;
        Ok(UploadPlan {
            target: UploadTarget {
                method: request.method().to_owned(),
                url: request.uri().to_owned(),
                headers: headers_of(&request),
                parts: None,
            },
            upload_id: None,
        })
    }

    async fn multipart(&self, blob: &NewBlob, ttl: Duration) -> Result<UploadPlan, Error> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&blob.key)
            .content_type(&blob.content_type)
            .send()
            .await
            .map_err(|err| s3_error("starting a multipart upload", err))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| Error::Blob("multipart upload without an id".into()))?
            .to_owned();
        let count = blob.size.div_ceil(self.part_size).max(1);
        let mut parts = Vec::with_capacity(count as usize);
        for index in 0..count {
            let number = (index + 1) as i32;
            let size = (blob.size - index * self.part_size).min(self.part_size);
            let request = self
                .upload_signer(blob)
                .upload_part()
                .bucket(&self.bucket)
                .key(&blob.key)
                .upload_id(&upload_id)
                .part_number(number)
                .content_length(size as i64)
                .presigned(presigning(ttl)?)
                .await
                .map_err(|err| s3_error("presigning a part", err))?;
            parts.push((
                request,
                UploadPart {
                    number: number as u32,
                    url: String::new(),
                    size,
                },
            ));
        }
        // Every part's URL signs its own Content-Length, which any client sends for a
        // body of `size` bytes; the headers all parts share leave it out.
        let mut headers = parts
            .first()
            .map(|(request, _)| headers_of(request))
            .unwrap_or_default();
        headers.remove("content-length");
        let parts: Vec<UploadPart> = parts
            .into_iter()
            .map(|(request, part)| UploadPart {
                url: request.uri().to_owned(),
                ..part
            })
            .collect();
        Ok(UploadPlan {
            target: UploadTarget {
                method: "PUT".into(),
                url: parts.first().map(|p| p.url.clone()).unwrap_or_default(),
                headers,
                parts: Some(parts),
            },
            upload_id: Some(upload_id),
        })
    }

    /// Assembles a multipart upload from the parts the store has. `Ok(false)` when no
    /// part was uploaded.
    async fn assemble(&self, key: &str, upload_id: &str) -> Result<bool, Error> {
        let mut completed = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let listed = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.clone())
                .send()
                .await;
            let listed = match listed {
                Ok(listed) => listed,
                // Already assembled by an earlier `complete`, or aborted.
                Err(err) if format!("{}", DisplayErrorContext(&err)).contains("NoSuchUpload") => {
                    return Ok(true)
                }
                Err(err) => return Err(s3_error("listing parts", err)),
            };
            for part in listed.parts() {
                completed.push(
                    CompletedPart::builder()
                        .set_part_number(part.part_number())
                        .set_e_tag(part.e_tag().map(str::to_owned))
                        .build(),
                );
            }
            if listed.is_truncated() == Some(true) {
                marker = listed.next_part_number_marker().map(str::to_owned);
            } else {
                break;
            }
        }
        if completed.is_empty() {
            return Ok(false);
        }
        // Stores may list parts in any order; completion needs them ascending.
        completed.sort_by_key(|part| part.part_number());
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .send()
            .await
            .map_err(|err| {
                Error::Mismatch(format!(
                    "the uploaded parts do not form the declared object: {}",
                    DisplayErrorContext(err)
                ))
            })?;
        Ok(true)
    }

    async fn hash_object(&self, key: &str) -> Result<String, Error> {
        let mut object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| s3_error("reading an object", err))?;
        let mut hasher = Sha256::new();
        while let Some(chunk) = object
            .body
            .try_next()
            .await
            .map_err(|err| s3_error("reading an object", err))?
        {
            hasher.update(&chunk);
        }
        Ok(Sha256Hex::from_digest(&hasher.finalize()).into())
    }
}

impl BlobStore for S3Store {
    fn prepare_upload(
        &self,
        blob: NewBlob,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<UploadPlan, Error>> {
        async move {
            if blob.size > self.multipart_threshold {
                self.multipart(&blob, ttl).await
            } else {
                self.single_put(&blob, ttl).await
            }
        }
        .boxed()
    }

    fn finish_upload(
        &self,
        key: String,
        upload_id: Option<String>,
        declared_size: u64,
    ) -> BoxFuture<'_, Result<Option<Uploaded>, Error>> {
        async move {
            if let Some(upload_id) = &upload_id {
                if !self.assemble(&key, upload_id).await? {
                    return Ok(None);
                }
            }
            let head = self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(&key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await;
            let head = match head {
                Ok(head) => head,
                Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => {
                    return Ok(None)
                }
                Err(err) => return Err(s3_error("reading object metadata", err)),
            };
            let size = head.content_length().unwrap_or(0).max(0) as u64;
            if size != declared_size {
                return Ok(Some(Uploaded { size, sha256: None }));
            }
            // A full-object SHA-256 the store verified on upload; composite checksums
            // of multipart uploads end in `-<parts>` and are not the object's digest.
            let verified = head
                .checksum_sha256()
                .filter(|value| !value.contains('-'))
                .and_then(|value| STANDARD.decode(value).ok())
                .filter(|digest| digest.len() == 32)
                .map(|digest| String::from(Sha256Hex::from_digest(&digest)));
            let sha256 = match verified {
                Some(sha256) => sha256,
                None => self.hash_object(&key).await?,
            };
            Ok(Some(Uploaded {
                size,
                sha256: Some(sha256),
            }))
        }
        .boxed()
    }

    fn download_url(
        &self,
        key: String,
        file_name: String,
        content_type: String,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<String, Error>> {
        async move {
            let request = self
                .presigner
                .get_object()
                .bucket(&self.bucket)
                .key(&key)
                .response_content_disposition(super::content_disposition(&file_name))
                .response_content_type(super::served_content_type(&content_type))
                .presigned(presigning(ttl)?)
                .await
                .map_err(|err| s3_error("presigning a GET", err))?;
            Ok(request.uri().to_owned())
        }
        .boxed()
    }

    fn service_url(&self, key: String, ttl: Duration) -> BoxFuture<'_, Result<String, Error>> {
        async move {
            let request = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&key)
                .presigned(presigning(ttl)?)
                .await
                .map_err(|err| s3_error("presigning a GET", err))?;
            Ok(request.uri().to_owned())
        }
        .boxed()
    }

    fn delete(&self, blobs: Vec<DoomedBlob>) -> BoxFuture<'_, Result<(), Error>> {
        async move {
            for blob in &blobs {
                if let Some(upload_id) = &blob.upload_id {
                    let aborted = self
                        .client
                        .abort_multipart_upload()
                        .bucket(&self.bucket)
                        .key(&blob.key)
                        .upload_id(upload_id)
                        .send()
                        .await;
                    if let Err(err) = aborted {
                        if !format!("{}", DisplayErrorContext(&err)).contains("NoSuchUpload") {
                            return Err(s3_error("aborting an upload", err));
                        }
                    }
                }
            }
            for chunk in blobs.chunks(DELETE_BATCH) {
                let objects = chunk
                    .iter()
                    .map(|blob| ObjectIdentifier::builder().key(&blob.key).build())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|err| s3_error("building a delete", err))?;
                let delete = Delete::builder()
                    .set_objects(Some(objects))
                    .quiet(true)
                    .build()
                    .map_err(|err| s3_error("building a delete", err))?;
                let answer = self
                    .client
                    .delete_objects()
                    .bucket(&self.bucket)
                    .delete(delete)
                    .send()
                    .await
                    .map_err(|err| s3_error("deleting objects", err))?;
                if let Some(failed) = answer.errors().first() {
                    return Err(Error::Blob(format!(
                        "deleting {} objects failed, first {:?}: {:?}",
                        answer.errors().len(),
                        failed.key(),
                        failed.message()
                    )));
                }
            }
            Ok(())
        }
        .boxed()
    }

    fn list_keys(&self, before: SystemTime) -> BoxFuture<'_, Result<Vec<String>, Error>> {
        async move {
            let mut keys = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&self.key_prefix)
                    .set_continuation_token(token.clone())
                    .send()
                    .await
                    .map_err(|err| s3_error("listing objects", err))?;
                for object in page.contents() {
                    let old = object
                        .last_modified()
                        .and_then(|at| SystemTime::try_from(*at).ok())
                        .is_some_and(|at| at < before);
                    // Other software's objects may share the bucket, even below the prefix.
                    let ours = object.key().filter(|key| {
                        key.strip_prefix(self.key_prefix.as_str())
                            .is_some_and(super::is_generated_id)
                    });
                    if let (true, Some(key)) = (old, ours) {
                        keys.push(key.to_owned());
                    }
                }
                token = page.next_continuation_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
            Ok(keys)
        }
        .boxed()
    }

    fn object_key(&self, id: &str) -> String {
        format!("{}{id}", self.key_prefix)
    }

    fn http_base(&self) -> Option<String> {
        None
    }
}
