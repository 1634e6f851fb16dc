// What every verb uses: the command-line parser and the engine's core types.
global using System.CommandLine;
global using System.Globalization;
global using Qwen2.Native;
