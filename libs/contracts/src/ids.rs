//! Identifiers of the things Verdict stores, each kind its own type, so that one kind's
//! id cannot be passed where another's is expected. They are UUIDs of version 7 (they
//! sort by creation), in their hyphenated form on the wire and in the databases.

use std::fmt;
use std::str::FromStr;

/// Text that is no id: the API answers it as it answers an id that names nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an id")]
pub struct NotAnId(String);

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = "uuid"))]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new id, later than every one this process made before.
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        #[cfg(feature = "sqlite")]
        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.to_string().into())
            }
        }

        #[cfg(feature = "sqlite")]
        impl rusqlite::types::FromSql for $name {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|error: NotAnId| rusqlite::types::FromSqlError::Other(error.into()))
            }
        }

        impl FromStr for $name {
            type Err = NotAnId;

            fn from_str(text: &str) -> Result<Self, NotAnId> {
                uuid::Uuid::try_parse(text)
                    .map(Self)
                    .map_err(|_| NotAnId(text.chars().take(64).collect()))
            }
        }
    };
}

uuid_id!(
    /// A project: what runs, members and tokens belong to.
    ProjectId
);
uuid_id!(
    /// A person's account.
    UserId
);
uuid_id!(
    /// A person's sign-in: the family of refresh tokens one login started.
    SessionId
);
uuid_id!(
    /// A run: one execution of a project's tests.
    RunId
);
uuid_id!(
    /// A file stored with a run: a screenshot, a log, a report.
    ArtifactId
);
uuid_id!(
    /// An import of a report into a run.
    ImportId
);
uuid_id!(
    /// A project's API token (not its secret, which only its holder has).
    TokenId
);
uuid_id!(
    /// A project's webhook.
    WebhookId
);
uuid_id!(
    /// One message to one webhook (or one commit status): the `webhook-id` header of
    /// each of its attempts.
    DeliveryId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_reads_back_from_its_text_and_its_json() {
        let id = ImportId::generate();
        assert_eq!(id.to_string().parse::<ImportId>(), Ok(id));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<ImportId>(&json).unwrap(), id);
    }

    #[test]
    fn an_id_is_written_hyphenated_in_lower_case() {
        let id: ImportId = "01A24DD31A36742DAF3E72998A5A73E1".parse().unwrap();
        assert_eq!(id.to_string(), "01a24dd3-1a36-742d-af3e-72998a5a73e1");
    }

    #[test]
    fn text_that_is_no_uuid_is_no_id() {
        assert!("run-1".parse::<ImportId>().is_err());
        assert!(serde_json::from_str::<ImportId>("\"../etc\"").is_err());
        assert!("".parse::<ImportId>().is_err());
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn an_id_is_stored_as_its_text_and_read_back() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let id = ImportId::generate();
        let (text, back): (String, ImportId) = conn
            .query_row("SELECT ?1, ?1", [id], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap();
        assert_eq!((text, back), (id.to_string(), id));
        let not_an_id = conn.query_row("SELECT 'run-1'", [], |row| row.get::<_, ImportId>(0));
        assert!(not_an_id.is_err());
    }

    #[test]
    fn ids_made_later_sort_later() {
        let first = ImportId::generate();
        let second = ImportId::generate();
        assert!(first < second);
    }
}
