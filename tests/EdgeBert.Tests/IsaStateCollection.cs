namespace EdgeBert.Tests;

/// <summary>Tests that switch IsaSelector.Active (a process-wide setting) run one at a time.</summary>
[CollectionDefinition("IsaState", DisableParallelization = true)]
public class IsaStateCollection { }
