set terminal pngcairo size 1200,900 font ',10'
set output 'soak.png'
set datafile separator ','
set key autotitle columnhead top left
set grid
set xlabel 'seconds'
set arrow 1 from 20.068389332,graph 0 to 20.068389332,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 2 from 25.094689632,graph 0 to 25.094689632,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 3 from 40.104663306,graph 0 to 40.104663306,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 4 from 80.158813096,graph 0 to 80.158813096,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 5 from 85.171560265,graph 0 to 85.171560265,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 6 from 100.191438663,graph 0 to 100.191438663,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 7 from 140.055848922,graph 0 to 140.055848922,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 8 from 145.078539595,graph 0 to 145.078539595,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 9 from 160.091320539,graph 0 to 160.091320539,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 10 from 183.406941551,graph 0 to 183.406941551,graph 1 nohead lc rgb '#e76f51' dt 2
set arrow 11 from 200.16558725,graph 0 to 200.16558725,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 12 from 205.189747217,graph 0 to 205.189747217,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 13 from 220.051071944,graph 0 to 220.051071944,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 14 from 234.08059625,graph 0 to 234.08059625,graph 1 nohead lc rgb '#e76f51' dt 2
set arrow 15 from 260.204696794,graph 0 to 260.204696794,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 16 from 265.033710057,graph 0 to 265.033710057,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 17 from 280.052671816,graph 0 to 280.052671816,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 18 from 320.09854504,graph 0 to 320.09854504,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 19 from 325.120193132,graph 0 to 325.120193132,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 20 from 340.13416679,graph 0 to 340.13416679,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 21 from 380.207446869,graph 0 to 380.207446869,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 22 from 385.025061534,graph 0 to 385.025061534,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 23 from 400.036930618,graph 0 to 400.036930618,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 24 from 440.101047977,graph 0 to 440.101047977,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 25 from 445.121799968,graph 0 to 445.121799968,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 26 from 460.130451913,graph 0 to 460.130451913,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 27 from 500.164134652,graph 0 to 500.164134652,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 28 from 505.191365986,graph 0 to 505.191365986,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 29 from 520.006648204,graph 0 to 520.006648204,graph 1 nohead lc rgb '#8d99ae' dt 2
set arrow 30 from 560.05801139,graph 0 to 560.05801139,graph 1 nohead lc rgb '#e9c46a' dt 2
set arrow 31 from 565.078118702,graph 0 to 565.078118702,graph 1 nohead lc rgb '#2a9d8f' dt 2
set arrow 32 from 580.09117163,graph 0 to 580.09117163,graph 1 nohead lc rgb '#8d99ae' dt 2
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
