# web.cmake — the browser UI (web/) embedded into libquarrel, included by CMakeLists.txt.
# With node and npm: web/build.sh installs the pinned packages (npm ci into <build>/web,
# once per package-lock.json) and web/build.mjs bundles + minifies with esbuild, hashes,
# gzips and writes <build>/web/web_assets.c. It reruns only when a file under web/ changes.
# Without node or npm: web/embed_none.c (an empty table; `/` says the UI was not built).
find_program(QUARREL_NODE node)
find_program(QUARREL_NPM npm)
set(WEB_OUT ${CMAKE_BINARY_DIR}/web)
if(QUARREL_NODE AND QUARREL_NPM)
  set(WEB_ASSETS_C ${WEB_OUT}/web_assets.c)
  file(GLOB_RECURSE WEB_INPUTS CONFIGURE_DEPENDS
       ${CMAKE_SOURCE_DIR}/web/src/* ${CMAKE_SOURCE_DIR}/web/styles/* ${CMAKE_SOURCE_DIR}/web/public/*)
  list(APPEND WEB_INPUTS ${CMAKE_SOURCE_DIR}/web/index.html ${CMAKE_SOURCE_DIR}/web/package.json
       ${CMAKE_SOURCE_DIR}/web/package-lock.json ${CMAKE_SOURCE_DIR}/web/build.mjs
       ${CMAKE_SOURCE_DIR}/web/build.sh ${CMAKE_SOURCE_DIR}/web/embed_none.c)
  add_custom_command(OUTPUT ${WEB_ASSETS_C}
    COMMAND bash ${CMAKE_SOURCE_DIR}/web/build.sh ${WEB_OUT}
    DEPENDS ${WEB_INPUTS}
    COMMENT "web UI: esbuild bundle -> ${WEB_ASSETS_C}"
    VERBATIM)
else()
  message(STATUS "web UI: node or npm not found, so quarrel serve is built without the browser UI (scripts/deps.sh installs them)")
  set(WEB_ASSETS_C ${CMAKE_SOURCE_DIR}/web/embed_none.c)
endif()
target_sources(quarrel_lib PRIVATE ${WEB_ASSETS_C})
