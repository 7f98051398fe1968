# Writes the kernel headers as the CUDA host emulation compiles them
# (HostEmulation.h): `extern __shared__` becomes `extern`, since `__shared__`
# alone means `static` there. A #line directive keeps diagnostics and
# debugger locations on the original file.
#   cmake -DSOURCE_DIR=<include/v4cuda> -DOUTPUT_DIR=<dir> -DHEADERS=<a.cuh;b.cuh> -P EmulatedHeaders.cmake
file(MAKE_DIRECTORY ${OUTPUT_DIR})
foreach(header IN LISTS HEADERS)
  file(READ ${SOURCE_DIR}/${header} text)
  string(REPLACE "extern __shared__" "extern" text "${text}")
  set(text "#line 1 \"${SOURCE_DIR}/${header}\"\n${text}")
  # Rewrite only on change, so dependents rebuild only when a header changed.
  set(existing "")
  if(EXISTS ${OUTPUT_DIR}/${header})
    file(READ ${OUTPUT_DIR}/${header} existing)
  endif()
  if(NOT existing STREQUAL text)
    file(WRITE ${OUTPUT_DIR}/${header} "${text}")
  endif()
endforeach()
