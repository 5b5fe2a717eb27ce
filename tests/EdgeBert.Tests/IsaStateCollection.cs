namespace EdgeBert.Tests;

/// <summary>Tests that switch IsaSelector.Active (process-wide state) run in this collection, one at a time.</summary>
[CollectionDefinition("IsaState", DisableParallelization = true)]
public sealed class IsaStateCollection;
