//! Creating requests with an `Idempotency-Key`: the answer is remembered in the
//! transaction that creates, and a repeat of the request gets it again (see
//! `verdict_store::idempotency`).

use serde::de::DeserializeOwned;
use serde::Serialize;
use verdict_store::idempotency::{KeyedRequest, Recall};
use verdict_store::rusqlite::Connection;

use crate::Error;
use verdict_contracts::Timestamp;

/// The answer a repeat of `keyed` gets, if it is one.
pub fn repeated<A: DeserializeOwned>(
    conn: &Connection,
    keyed: Option<&KeyedRequest>,
) -> Result<Option<A>, Error> {
    let Some(keyed) = keyed else {
        return Ok(None);
    };
    match keyed.recall(conn, Timestamp::now().millis())? {
        Recall::New => Ok(None),
        Recall::Repeat(answer) => Ok(Some(answer)),
        Recall::Conflict => Err(Error::KeyReused),
    }
}

/// Remembers `answer` for `keyed`, in the transaction that made it.
pub fn remember<A: Serialize>(
    conn: &Connection,
    keyed: Option<&KeyedRequest>,
    answer: &A,
) -> Result<(), Error> {
    if let Some(keyed) = keyed {
        keyed.remember(conn, answer, Timestamp::now().millis())?;
    }
    Ok(())
}
