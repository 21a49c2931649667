//! Liveness and readiness of a process: each component (a consumer, the relay) reports
//! whether it is connected; the process is ready when all of them are.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

#[derive(Clone, Default)]
pub struct Health {
    components: Arc<Mutex<BTreeMap<String, bool>>>,
}

impl Health {
    /// Registers a component as not ready yet.
    pub fn register(&self, name: &str) {
        self.set(name, false);
    }

    pub fn set(&self, name: &str, ready: bool) {
        if let Ok(mut map) = self.components.lock() {
            map.insert(name.to_owned(), ready);
        }
    }

    pub fn is_ready(&self) -> bool {
        self.components.lock().map(|m| m.values().all(|r| *r)).unwrap_or(false)
    }

    /// Each component and whether it is ready, for `/readyz`.
    pub fn snapshot(&self) -> BTreeMap<String, bool> {
        self.components.lock().map(|m| m.clone()).unwrap_or_default()
    }
}
