//! The store conformance suite against the in-memory store.

clarion_testkit::store_conformance_tests!(async { clarion_core::memory::MemoryStore::new() });
