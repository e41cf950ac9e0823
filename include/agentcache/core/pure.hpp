// agentcache core: pure C++17, no PostgreSQL headers.
//
// Core headers are also included by the glue (src/pg), so they cannot refuse
// PostgreSQL's macros themselves. Purity is enforced twice at compile time:
//  * the core's translation units (src/core/*.cpp) are compiled with only
//    include/ on the include path (Makefile: CORE_OBJS; CMakeLists.txt), so a
//    PostgreSQL #include fails to resolve;
//  * each of them ends with #include "agentcache/core/pure_check.hpp", which
//    stops the build if any PostgreSQL header got pulled in anyway.
#pragma once
#define AGENTCACHE_CORE 1
