using BenchmarkDotNet.Running;
using EdgeBert.Benchmarks;

// `dotnet run -c Release --project bench/EdgeBert.Benchmarks -- --filter '*'` runs every suite;
// `... -- peers --shape base --seq 128 --batch 1 --threads 1` runs the side-by-side peers (PeersCommand);
// `... -- peers-embed --model DIR --onnx FILE --input IN.jsonl --threads 1` the embedding peers (PeersEmbed).
if (args.Length > 0 && args[0] == "peers") return PeersCommand.Run(args[1..]);
if (args.Length > 0 && args[0] == "peers-embed") return PeersEmbed.Run(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
