@echo off
rem Kiro Tray launcher for Windows: double-click it, or run kiro-api-start.bat [options] in a terminal.
rem
rem The first run creates a private Python environment in .venv and installs Kiro Tray with its tray app
rem (a few minutes); later runs start at once and reinstall only when pyproject.toml changed.
rem The tray app runs with pythonw.exe (no console window). Options pass through to the app;
rem --headless, --print-key, --version and --help run in this console instead, e.g.
rem   kiro-api-start.bat --headless --port 9000
rem Each "step:" comment has a counterpart in kiro-api-start.command (tests/packaging checks this).
setlocal EnableExtensions DisableDelayedExpansion

rem step: cd
pushd "%~dp0" || goto :no_folder
rem The app names this launcher in its hints, e.g. kiro-api-start.bat --print-key.
set "KIRO_TRAY_LAUNCHER=%~nx0"

set "VENV_PY=.venv\Scripts\python.exe"
set "VENV_PYW=.venv\Scripts\pythonw.exe"
set "STAMP=.venv\.kiro-tray-installed"
set "SUPPORTED=import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 14) else 1)"

rem step: venv
rem A working .venv is reused; a missing or broken one is created again.
%VENV_PY% -c "%SUPPORTED%" >nul 2>&1 && goto :install

rem step: python
rem The py launcher first (newest supported version), then python on PATH.
set "PY="
py -3.13 -c "%SUPPORTED%" >nul 2>&1 && set "PY=py -3.13" && goto :make_venv
py -3.12 -c "%SUPPORTED%" >nul 2>&1 && set "PY=py -3.12" && goto :make_venv
py -3.11 -c "%SUPPORTED%" >nul 2>&1 && set "PY=py -3.11" && goto :make_venv
python -c "%SUPPORTED%" >nul 2>&1 && set "PY=python" && goto :make_venv
goto :no_python

:make_venv
if exist ".venv" echo The .venv folder does not work with this computer's Python any more; creating it again.
if exist ".venv" rmdir /s /q ".venv"
echo First run: creating a private Python environment in .venv with %PY% ...
%PY% -m venv .venv
if errorlevel 1 goto :venv_failed

:install
rem step: install
rem Installs (editable, so a git pull takes effect at once) only when pyproject.toml changed.
set "WANT="
set "HAVE="
for /f "usebackq delims=" %%h in (`%VENV_PY% -c "import hashlib; print(hashlib.sha256(open('pyproject.toml', 'rb').read()).hexdigest())"`) do set "WANT=%%h"
if exist "%STAMP%" set /p HAVE=<"%STAMP%"
if defined WANT if "%HAVE%"=="%WANT%" goto :display
echo Installing Kiro Tray and the packages it needs into .venv - the first time takes a few minutes ...
%VENV_PY% -m pip install --disable-pip-version-check --editable ".[gui]"
if errorlevel 1 goto :install_failed
if defined WANT >"%STAMP%" echo %WANT%

:display
rem step: display
rem Windows always has a desktop: options that print something run in this console with python.exe,
rem everything else starts the tray app with pythonw.exe.
set "CONSOLE="
for %%a in (%*) do (
  if /i "%%~a"=="--headless" set "CONSOLE=1"
  if /i "%%~a"=="--print-key" set "CONSOLE=1"
  if /i "%%~a"=="--version" set "CONSOLE=1"
  if /i "%%~a"=="--help" set "CONSOLE=1"
  if /i "%%~a"=="-h" set "CONSOLE=1"
)

rem step: run
if defined CONSOLE goto :run_console
start "Kiro Tray" "%VENV_PYW%" -m kiro_tray %*
if errorlevel 1 goto :start_failed
goto :done

:run_console
%VENV_PY% -m kiro_tray %*
set "STATUS=%ERRORLEVEL%"
if "%STATUS%"=="0" goto :done
if "%STATUS%"=="130" goto :done

rem step: errors
echo.
echo Kiro Tray stopped with an error - exit code %STATUS%; the message above says why.
echo   If it says the port is busy, Kiro Tray is probably running already - look for its tray icon -
echo   or another program uses that port: start this one on another port, e.g. --port 9000.
goto :fail

:start_failed
echo.
echo Kiro Tray could not start: Windows could not run %VENV_PYW%.
echo   Delete the .venv folder and double-click kiro-api-start.bat again.
goto :fail

:no_python
echo.
echo Kiro Tray could not start: Python 3.11, 3.12 or 3.13 is not installed.
echo   Newer versions such as 3.14 are not supported yet.
echo   Install Python 3.13 from https://www.python.org/downloads/windows/ and tick "Add python.exe to PATH",
echo   or run: winget install Python.Python.3.13
echo   Then double-click kiro-api-start.bat again.
goto :fail

:venv_failed
if exist ".venv" rmdir /s /q ".venv"
echo.
echo Kiro Tray could not start: Python could not create its private environment in .venv.
echo   Repair or reinstall Python from https://www.python.org/downloads/windows/, then try again.
goto :fail

:install_failed
echo.
echo Kiro Tray could not start: installing Kiro Tray's packages failed; the lines above say why.
echo   Check the internet connection - behind a proxy, set HTTPS_PROXY - then run this launcher again.
goto :fail

:no_folder
echo Kiro Tray could not start: cannot open the folder %~dp0
goto :fail_no_popd

rem step: pause
rem Keep the window open so the message can be read; KIRO_TRAY_NO_PAUSE=1 turns the wait off.
:fail
popd
:fail_no_popd
if not defined KIRO_TRAY_NO_PAUSE pause
exit /b 1

:done
popd
exit /b 0
