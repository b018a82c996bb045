// The moirai command line: sub-commands are registered here and dispatched from main.cpp.
