using BenchmarkDotNet.Running;

// `dotnet run -c Release --project bench/EdgeBert.Benchmarks -- --filter '*'` runs every suite.
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
