# Compiler flags shared by every nuri target.
if(NURI_PORTABLE)
  set(NURI_ARCH_FLAGS -march=x86-64 -mtune=generic)
else()
  set(NURI_ARCH_FLAGS -march=x86-64-v3)
endif()

# Applies warnings, architecture tuning and optional sanitizers to one target.
function(nuri_target_defaults target)
  # -Wno-restrict: g++ 12 warns falsely on `"literal" + std::string` (GCC bug 105651).
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wno-restrict -Wall -Wextra -Wno-unused-parameter -fno-trapping-math -fno-math-errno ${NURI_ARCH_FLAGS}>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CONFIG:Release>>:-O3>)
  if(NURI_SANITIZE)
    target_compile_options(${target} PRIVATE
      $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined -fno-omit-frame-pointer>)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()
