import BenchKit

await ChatBench.runFromCommandLine()
