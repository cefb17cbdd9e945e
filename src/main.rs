use clap::Parser;

// jemalloc: the daemon allocates many small, short-lived values per delivery (JSON, CEL,
// headers) from several threads; glibc's malloc spent ~15% of a delivery's CPU on them.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    oie::cli::main(oie::cli::Cli::parse())
}
