//! `file`: writes each delivery as one JSON line to a file, or to stdout with `path = "-"`.
//! The default connector, and a way to see exactly what `oie` would send.

mod config;
mod kind;
mod sink;
#[cfg(test)]
mod tests;

pub use config::FileConfig;
pub use sink::FileSink;
