use clap::Parser;

fn main() -> std::process::ExitCode {
    oie::cli::main(oie::cli::Cli::parse())
}
