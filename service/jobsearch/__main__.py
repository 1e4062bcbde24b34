from jobsearch.cli import main

main()
