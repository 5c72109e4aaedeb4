//! inlet: lands Singer streams and database tables in a data lake
//! as typed Parquet, CSV or JSONL files, exactly once and in bounded memory.
//!
//! The modules follow the data flow: [`singer`] reads lines (with the
//! [`scan`] JSON scanner, which [`batch`] shares), [`schema`] turns
//! SCHEMA messages into Arrow types and checks, [`batch`] buffers records as
//! Arrow columns, [`format`] encodes files, [`layout`] names them, [`storage`]
//! puts them, [`table`] commits them, and [`state`] releases STATE messages
//! once everything before them is durable. [`load`] wires the stages together.
//! [`export`] reads database tables through [`source`] into the same tables,
//! and [`write`] an Arrow IPC stream (Python's `inlet.write`).

#![warn(missing_docs)]

pub mod batch;
pub mod cli;
pub mod config;
pub mod export;
pub mod format;
pub mod layout;
pub mod load;
pub mod runlog;
pub mod scan;
pub mod schema;
pub mod singer;
pub mod source;
pub mod state;
pub mod storage;
pub mod table;
pub mod write;
