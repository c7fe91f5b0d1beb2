//! The local-disk store: blobs are files under `<dir>/objects`, uploads land in
//! `<dir>/tmp` and are renamed into place once complete. The upload's SHA-256, computed
//! while it streams in, is kept in `<dir>/digests/<key>` so `complete` need not read the
//! file again; without it (a crash between the two renames), the file is hashed. Clients reach them through
//! this service's own HTTP server (see `http.rs`) with signed URLs.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use futures::FutureExt;
use sha2::{Digest, Sha256};
use verdict_contracts::artifacts::UploadTarget;
use verdict_contracts::Timestamp;

use super::{is_generated_id, BlobStore, DoomedBlob, NewBlob, UploadPlan, Uploaded};
use crate::signing::UrlSigner;
use crate::Error;

pub struct DiskStore {
    objects: PathBuf,
    tmp: PathBuf,
    digests: PathBuf,
    signer: UrlSigner,
    http_base: String,
}

impl DiskStore {
    pub fn open(dir: &Path, signer: UrlSigner, http_base: String) -> Result<Self, Error> {
        let objects = dir.join("objects");
        let tmp = dir.join("tmp");
        let digests = dir.join("digests");
        for path in [&objects, &tmp, &digests] {
            std::fs::create_dir_all(path).map_err(Error::io(path))?;
        }
        Ok(Self {
            objects,
            tmp,
            digests,
            signer,
            http_base,
        })
    }

    pub fn signer(&self) -> &UrlSigner {
        &self.signer
    }

    /// Where the blob of `key` is; `None` for anything but a generated id (object keys
    /// are ids here), refused before it comes near a path.
    pub fn object_path(&self, key: &str) -> Option<PathBuf> {
        is_generated_id(key).then(|| self.objects.join(key))
    }

    /// A fresh temporary file name for an upload of `key`.
    pub fn temp_path(&self, key: &str) -> PathBuf {
        self.tmp.join(format!("{key}.{}", uuid::Uuid::now_v7()))
    }

    /// Puts a finished upload in place: the old digest goes first, then the file is
    /// renamed over the blob, then the new digest is written. A crash at any point
    /// leaves either no digest or the right one.
    pub async fn install(
        &self,
        key: &str,
        temp: &Path,
        size: u64,
        sha256: &str,
    ) -> Result<(), Error> {
        let target = self.object_path(key).ok_or(Error::NotFound("blob"))?;
        let digest = self.digests.join(key);
        remove_if_present(&digest).await?;
        tokio::fs::rename(temp, &target)
            .await
            .map_err(Error::io(&target))?;
        let digest_temp = self.temp_path(&format!("{key}.digest"));
        tokio::fs::write(&digest_temp, format!("{size} {sha256}"))
            .await
            .map_err(Error::io(&digest_temp))?;
        tokio::fs::rename(&digest_temp, &digest)
            .await
            .map_err(Error::io(&digest))
    }

    fn expiry(ttl: Duration) -> i64 {
        Timestamp::now().secs() + ttl.as_secs() as i64
    }
}

async fn remove_if_present(path: &Path) -> Result<(), Error> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Error::io(path)(err)),
    }
}

/// The digest recorded for a blob of `size` bytes, if one was.
fn recorded_digest(path: &Path, size: u64) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let (recorded_size, sha256) = text.split_once(' ')?;
    (recorded_size.parse::<u64>().ok()? == size && sha256.len() == 64).then(|| sha256.to_owned())
}

fn hash_file(path: &Path) -> Result<String, Error> {
    let mut file = std::fs::File::open(path).map_err(Error::io(path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer).map_err(Error::io(path))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(verdict_contracts::artifacts::Sha256Hex::from_digest(&hasher.finalize()).into())
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(Error::BlobTask)?
}

impl BlobStore for DiskStore {
    fn prepare_upload(
        &self,
        blob: NewBlob,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<UploadPlan, Error>> {
        let url = self.signer.url("PUT", &blob.key, Self::expiry(ttl));
        async move {
            Ok(UploadPlan {
                target: UploadTarget {
                    method: "PUT".into(),
                    url,
                    headers: Default::default(),
                    parts: None,
                },
                upload_id: None,
            })
        }
        .boxed()
    }

    fn finish_upload(
        &self,
        key: String,
        _upload_id: Option<String>,
        declared_size: u64,
    ) -> BoxFuture<'_, Result<Option<Uploaded>, Error>> {
        let path = self.object_path(&key);
        let digest = self.digests.join(&key);
        async move {
            let Some(path) = path else {
                return Ok(None);
            };
            blocking(move || {
                let size = match std::fs::metadata(&path) {
                    Ok(metadata) => metadata.len(),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(err) => return Err(Error::io(&path)(err)),
                };
                let sha256 = if size != declared_size {
                    None
                } else if let Some(recorded) = recorded_digest(&digest, size) {
                    Some(recorded)
                } else {
                    Some(hash_file(&path)?)
                };
                Ok(Some(Uploaded { size, sha256 }))
            })
            .await
        }
        .boxed()
    }

    fn download_url(
        &self,
        key: String,
        _file_name: String,
        _content_type: String,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<String, Error>> {
        let url = self.signer.url("GET", &key, Self::expiry(ttl));
        async move { Ok(url) }.boxed()
    }

    fn service_url(&self, key: String, ttl: Duration) -> BoxFuture<'_, Result<String, Error>> {
        let url = format!(
            "{}{}",
            self.http_base.trim_end_matches('/'),
            self.signer.url("GET", &key, Self::expiry(ttl))
        );
        async move { Ok(url) }.boxed()
    }

    fn delete(&self, blobs: Vec<DoomedBlob>) -> BoxFuture<'_, Result<(), Error>> {
        let paths: Vec<PathBuf> = blobs
            .iter()
            .filter_map(|blob| self.object_path(&blob.key))
            .chain(
                blobs
                    .iter()
                    .filter(|blob| is_generated_id(&blob.key))
                    .map(|blob| self.digests.join(&blob.key)),
            )
            .collect();
        async move {
            blocking(move || {
                for path in paths {
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                        Err(err) => return Err(Error::io(&path)(err)),
                    }
                }
                Ok(())
            })
            .await
        }
        .boxed()
    }

    fn list_keys(&self, before: SystemTime) -> BoxFuture<'_, Result<Vec<String>, Error>> {
        let (objects, tmp, digests) =
            (self.objects.clone(), self.tmp.clone(), self.digests.clone());
        async move {
            blocking(move || {
                let old = |entry: &std::fs::DirEntry| {
                    entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|modified| modified < before)
                };
                // Temporary files older than the cutoff belong to uploads that died.
                for entry in std::fs::read_dir(&tmp).map_err(Error::io(&tmp))?.flatten() {
                    if old(&entry) {
                        let _ = std::fs::remove_file(entry.path());
                    }
                }
                // Digests whose blob is gone (a crash between deleting the two).
                for entry in std::fs::read_dir(&digests)
                    .map_err(Error::io(&digests))?
                    .flatten()
                {
                    if old(&entry) && !objects.join(entry.file_name()).exists() {
                        let _ = std::fs::remove_file(entry.path());
                    }
                }
                let mut keys = Vec::new();
                for entry in std::fs::read_dir(&objects)
                    .map_err(Error::io(&objects))?
                    .flatten()
                {
                    if old(&entry) {
                        if let Some(name) = entry.file_name().to_str() {
                            keys.push(name.to_owned());
                        }
                    }
                }
                Ok(keys)
            })
            .await
        }
        .boxed()
    }

    fn object_key(&self, id: &str) -> String {
        id.to_owned()
    }

    fn http_base(&self) -> Option<String> {
        Some(self.http_base.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn finishing_reports_size_and_hash_and_deleting_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            DiskStore::open(dir.path(), UrlSigner::new(&[1]).unwrap(), "http://x".into()).unwrap();
        let key = "0191a2b3-c4d5-7e6f-8a9b-0c1d2e3f4a5b".to_owned();
        assert_eq!(
            store.finish_upload(key.clone(), None, 3).await.unwrap(),
            None
        );
        std::fs::write(store.object_path(&key).unwrap(), b"abc").unwrap();
        let uploaded = store
            .finish_upload(key.clone(), None, 3)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(uploaded.size, 3);
        assert_eq!(
            uploaded.sha256.as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        // A recorded digest is used instead of reading the file again.
        let temp = store.temp_path(&key);
        std::fs::write(&temp, b"xyz").unwrap();
        store
            .install(&key, &temp, 3, &"e".repeat(64))
            .await
            .unwrap();
        let recorded = store
            .finish_upload(key.clone(), None, 3)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(recorded.sha256, Some("e".repeat(64)));
        let short = store
            .finish_upload(key.clone(), None, 4)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(short.sha256, None);
        let later = SystemTime::now() + Duration::from_secs(60);
        assert_eq!(store.list_keys(later).await.unwrap(), vec![key.clone()]);
        let doomed = vec![DoomedBlob {
            key: key.clone(),
            upload_id: None,
        }];
        store.delete(doomed.clone()).await.unwrap();
        store.delete(doomed).await.unwrap();
        assert!(store.list_keys(later).await.unwrap().is_empty());
    }
}
