using EdgeBert.Model;

// dotnet run --project samples/ClassifySample -- weights/edgebert-minilm-sst2 "a gripping, beautifully made film"
using var classifier = TextClassifier.Load(args.Length > 0 ? args[0] : "weights/edgebert-minilm-sst2");
foreach (var text in args.Length > 1 ? args[1..] : ["a gripping, beautifully made film", "a dull, lifeless mess"])
{
    var result = classifier.Classify(text);
    Console.WriteLine($"{result.Label}\t{result.Probability:F4}\t{text}");
}
