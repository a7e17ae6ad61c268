set terminal pngcairo size 1200,900 font ',10'
set output 'soak.png'
set datafile separator ','
set key autotitle columnhead top left
set grid
set xlabel 'seconds'
set arrow 1 from 20.085019457,graph 0 to 20.085019457,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 2 from 25.120417068,graph 0 to 25.120417068,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 3 from 40.132317333,graph 0 to 40.132317333,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 4 from 80.031317288,graph 0 to 80.031317288,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 5 from 85.048530392,graph 0 to 85.048530392,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 6 from 100.06778431,graph 0 to 100.06778431,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 7 from 140.131398267,graph 0 to 140.131398267,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 8 from 145.14894006,graph 0 to 145.14894006,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 9 from 160.158414482,graph 0 to 160.158414482,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 10 from 182.43339178,graph 0 to 182.43339178,graph 1 nohead lc rgb '#e76f51' dt 2
set arrow 11 from 200.237684046,graph 0 to 200.237684046,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 12 from 205.064562255,graph 0 to 205.064562255,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 13 from 220.077126041,graph 0 to 220.077126041,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 14 from 224.377930982,graph 0 to 224.377930982,graph 1 nohead lc rgb '#e76f51' dt 2
set arrow 15 from 260.137611997,graph 0 to 260.137611997,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 16 from 265.155975732,graph 0 to 265.155975732,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 17 from 280.168175957,graph 0 to 280.168175957,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 18 from 320.026100845,graph 0 to 320.026100845,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 19 from 325.054376712,graph 0 to 325.054376712,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 20 from 340.066231339,graph 0 to 340.066231339,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 21 from 380.204520402,graph 0 to 380.204520402,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 22 from 385.033815308,graph 0 to 385.033815308,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 23 from 400.052907056,graph 0 to 400.052907056,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 24 from 440.124408931,graph 0 to 440.124408931,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 25 from 445.147565236,graph 0 to 445.147565236,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 26 from 460.18307159,graph 0 to 460.18307159,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 27 from 500.072739114,graph 0 to 500.072739114,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 28 from 505.13209017,graph 0 to 505.13209017,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 29 from 520.156484366,graph 0 to 520.156484366,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 30 from 560.124414215,graph 0 to 560.124414215,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 31 from 565.150986214,graph 0 to 565.150986214,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 32 from 580.196028506,graph 0 to 580.196028506,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 33 from 620.086693348,graph 0 to 620.086693348,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 34 from 625.114535476,graph 0 to 625.114535476,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 35 from 640.167439492,graph 0 to 640.167439492,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 36 from 680.081454321,graph 0 to 680.081454321,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 37 from 685.098053263,graph 0 to 685.098053263,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 38 from 700.113131918,graph 0 to 700.113131918,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 39 from 740.070552706,graph 0 to 740.070552706,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 40 from 745.096444664,graph 0 to 745.096444664,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 41 from 760.124938065,graph 0 to 760.124938065,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 42 from 782.779307073,graph 0 to 782.779307073,graph 1 nohead lc rgb '#e76f51' dt 2
set arrow 43 from 800.198569501,graph 0 to 800.198569501,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 44 from 805.01846023,graph 0 to 805.01846023,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 45 from 820.028216207,graph 0 to 820.028216207,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 46 from 825.020710707,graph 0 to 825.020710707,graph 1 nohead lc rgb '#e76f51' dt 2
set arrow 47 from 860.153244939,graph 0 to 860.153244939,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 48 from 865.180435932,graph 0 to 865.180435932,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 49 from 880.192863196,graph 0 to 880.192863196,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 50 from 920.05220458,graph 0 to 920.05220458,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 51 from 925.07278466,graph 0 to 925.07278466,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 52 from 940.10092461,graph 0 to 940.10092461,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 53 from 980.151825254,graph 0 to 980.151825254,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 54 from 985.17643125,graph 0 to 985.17643125,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 55 from 1000.186538819,graph 0 to 1000.186538819,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 56 from 1040.046418223,graph 0 to 1040.046418223,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 57 from 1045.068810957,graph 0 to 1045.068810957,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 58 from 1060.082847719,graph 0 to 1060.082847719,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 59 from 1100.151525484,graph 0 to 1100.151525484,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 60 from 1105.175957517,graph 0 to 1105.175957517,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 61 from 1120.192763851,graph 0 to 1120.192763851,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 62 from 1160.177990788,graph 0 to 1160.177990788,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 63 from 1165.021186829,graph 0 to 1165.021186829,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 64 from 1180.040215958,graph 0 to 1180.040215958,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 65 from 1220.134292168,graph 0 to 1220.134292168,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 66 from 1225.159709339,graph 0 to 1225.159709339,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 67 from 1240.178650383,graph 0 to 1240.178650383,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 68 from 1280.036281944,graph 0 to 1280.036281944,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 69 from 1285.064423281,graph 0 to 1285.064423281,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 70 from 1300.073392183,graph 0 to 1300.073392183,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 71 from 1340.147295027,graph 0 to 1340.147295027,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 72 from 1345.171705888,graph 0 to 1345.171705888,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 73 from 1360.184906216,graph 0 to 1360.184906216,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 74 from 1383.05159383,graph 0 to 1383.05159383,graph 1 nohead lc rgb '#e76f51' dt 2
set arrow 75 from 1400.13112956,graph 0 to 1400.13112956,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 76 from 1405.152933975,graph 0 to 1405.152933975,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 77 from 1420.173044302,graph 0 to 1420.173044302,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 78 from 1433.039508589,graph 0 to 1433.039508589,graph 1 nohead lc rgb '#e76f51' dt 2
set arrow 79 from 1460.023257458,graph 0 to 1460.023257458,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 80 from 1465.037229628,graph 0 to 1465.037229628,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 81 from 1480.053127006,graph 0 to 1480.053127006,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 82 from 1520.11979237,graph 0 to 1520.11979237,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 83 from 1525.136460994,graph 0 to 1525.136460994,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 84 from 1540.148753367,graph 0 to 1540.148753367,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 85 from 1580.202218188,graph 0 to 1580.202218188,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 86 from 1585.020875088,graph 0 to 1585.020875088,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 87 from 1600.034020824,graph 0 to 1600.034020824,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 88 from 1640.078975748,graph 0 to 1640.078975748,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 89 from 1645.096499899,graph 0 to 1645.096499899,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 90 from 1660.107088859,graph 0 to 1660.107088859,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 91 from 1700.154841132,graph 0 to 1700.154841132,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 92 from 1705.170817591,graph 0 to 1705.170817591,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 93 from 1720.185029308,graph 0 to 1720.185029308,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 94 from 1760.034589769,graph 0 to 1760.034589769,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 95 from 1765.049197754,graph 0 to 1765.049197754,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 96 from 1780.060229137,graph 0 to 1780.060229137,graph 1 nohead lc rgb '#8d99ae' dt 2
set multiplot layout 3,1 title 'azp-bridge soak (dashed: push green, refused push yellow, Keycloak stop/ready red, upstream resets grey)'
set ylabel 'Envoy RSS, MiB'
set y2label 'VM linear memory, MiB'
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
plot 'samples.csv' using 1:($2/1024) with linespoints title 'Envoy RSS', '' using 1:($3/1048576) axes x1y2 with linespoints title 'VM linear memory (all VMs, right)'
unset y2label
unset y2tics
set ytics mirror
set ylabel 'requests/s'
plot 'samples.csv' using 1:5 with linespoints title 'answered'
set ylabel 'per 10 s'
plot 'samples.csv' using 1:6 with linespoints title 'unexpected answers', '' using 1:7 with linespoints title '5xx (faults)'
unset multiplot
