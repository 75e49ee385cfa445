"""Speed and memory benchmarks behind `seg-uda-benchmark` (train / methods / infer / data / eval / gemm / aspp);
each subcommand lives in its own module and prints a table, most also save it as JSON + Markdown."""
