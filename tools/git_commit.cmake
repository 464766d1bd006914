# Writes OUT (a header defining MF_GIT_COMMIT) from the checkout at SRC, at every build, so
# benchmark records name the commit they were measured at ("-dirty" when the tree differs).
execute_process(COMMAND git rev-parse --short=12 HEAD WORKING_DIRECTORY ${SRC}
                OUTPUT_VARIABLE c OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT c)
  set(c unknown)
else()
  # appending benchmark records is not a change of the code being measured
  execute_process(COMMAND git diff --quiet HEAD -- . ":(exclude)docs/bench-results.jsonl"
                  WORKING_DIRECTORY ${SRC} RESULT_VARIABLE dirty ERROR_QUIET)
  if(NOT dirty EQUAL 0)
    set(c "${c}-dirty")
  endif()
endif()
set(text "#define MF_GIT_COMMIT \"${c}\"\n")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT old STREQUAL text)
  file(WRITE ${OUT} "${text}")
endif()
