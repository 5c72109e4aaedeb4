//! `inlet check`: write, read back, list and delete a probe object, and say
//! which permission is missing when a step is refused.

use bytes::Bytes;

use super::{StorageError, Store};

/// One step of `inlet check`.
#[derive(Debug)]
pub struct CheckStep {
    /// Step name: put, get, list, delete.
    pub step: &'static str,
    /// Outcome; a refused step names the missing permission.
    pub result: Result<(), StorageError>,
    /// A failure inlet load can live with (it never deletes objects).
    pub optional: bool,
}

impl CheckStep {
    /// Passed, or failed only in a step `inlet load` does not need.
    pub fn usable(&self) -> bool {
        self.result.is_ok() || self.optional
    }
}

/// Writes, reads back, lists and deletes a probe object. Stops after a
/// failed put (nothing to read); the other steps all run so every missing
/// permission is reported at once.
pub async fn check(store: &Store) -> Vec<CheckStep> {
    let rel = format!("_inlet_check/probe-{}.txt", uuid::Uuid::new_v4().simple());
    let body = Bytes::from(format!("inlet check {rel}"));
    let mut steps = Vec::new();
    let mut step = |step, optional, result: Result<(), StorageError>| {
        let ok = result.is_ok();
        steps.push(CheckStep {
            step,
            result,
            optional,
        });
        ok
    };
    if !step("put", false, store.put_new(&rel, body.clone()).await) {
        return steps;
    }
    let read = store.get(&rel).await.and_then(|b| {
        if b == body {
            Ok(())
        } else {
            Err(StorageError::Destination {
                dest: store.display().to_string(),
                msg: "the probe read back differs from what was written".into(),
            })
        }
    });
    step("get", false, read);
    let listed = store.list("_inlet_check").await.and_then(|l| {
        if l.contains(&rel) {
            Ok(())
        } else {
            Err(StorageError::Destination {
                dest: store.display().to_string(),
                msg: "the probe is missing from the listing".into(),
            })
        }
    });
    step("list", false, listed);
    let deleted = store.delete(&rel).await.map_err(|e| match e {
        StorageError::Object {
            op,
            path,
            msg,
            permission,
        } if permission.is_some() => StorageError::Object {
            op,
            path: path.clone(),
            msg: format!(
                "{msg}; inlet load never deletes objects, so this is only a warning — \
                 remove the probe {path} by hand"
            ),
            permission,
        },
        other => other,
    });
    let refused = matches!(
        &deleted,
        Err(StorageError::Object {
            permission: Some(_),
            ..
        })
    );
    step("delete", refused, deleted);
    steps
}
