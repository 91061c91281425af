# Finds OpenBLAS and exposes it as nuri::blas. The OpenMP build is preferred: it runs
# single-threaded inside our own OpenMP regions instead of oversubscribing the cores.
# Searched in the system and in CMAKE_PREFIX_PATH (scripts/gpu-deps.sh bundles it there).
find_path(NURI_CBLAS_INCLUDE_DIR cblas.h
  HINTS /usr/include/x86_64-linux-gnu/openblas-openmp
  PATH_SUFFIXES include/x86_64-linux-gnu/openblas-openmp include/x86_64-linux-gnu/openblas-pthread
                x86_64-linux-gnu/openblas-openmp x86_64-linux-gnu/openblas-pthread include/openblas
                openblas include)
find_library(NURI_OPENBLAS_LIBRARY NAMES openblas
  HINTS /usr/lib/x86_64-linux-gnu/openblas-openmp
  PATH_SUFFIXES lib/x86_64-linux-gnu/openblas-openmp lib/x86_64-linux-gnu/openblas-pthread
                x86_64-linux-gnu/openblas-openmp x86_64-linux-gnu/openblas-pthread lib)
if(NOT NURI_CBLAS_INCLUDE_DIR OR NOT NURI_OPENBLAS_LIBRARY)
  message(FATAL_ERROR "OpenBLAS not found: run scripts/setup.sh (Debian package libopenblas-openmp-dev)")
endif()
add_library(nuri_blas INTERFACE)
target_include_directories(nuri_blas INTERFACE ${NURI_CBLAS_INCLUDE_DIR})
target_link_libraries(nuri_blas INTERFACE ${NURI_OPENBLAS_LIBRARY})
add_library(nuri::blas ALIAS nuri_blas)
message(STATUS "nuri: OpenBLAS ${NURI_OPENBLAS_LIBRARY}")
if(NURI_OPENBLAS_LIBRARY MATCHES "pthread")
  message(WARNING "nuri: this OpenBLAS is the pthreads build; kernels that call sgemm from OpenMP "
                  "threads will oversubscribe the cores. Install libopenblas-openmp-dev.")
endif()
