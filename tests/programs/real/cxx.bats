#!/usr/bin/env bats
# A C++ program as C++ programs use threads: std::async, a std::thread
# pool on std::condition_variable, promises, timed waits, exceptions.

load real_helpers

@test "C++ std::thread, std::async, std::condition_variable" {
    compare_native cxx_async
}

@test "C++ threads on one carrier" {
    FIBERIZE_WORKERS=1 compare_native cxx_async
}
