"""Reference lists for synthetic identities: names, nicknames, postcode districts, geography.

Everything here is invented-but-plausible reference data. Lists are in rough order of popularity:
samplers weight earlier entries more heavily, so common names (and therefore name collisions)
are common, as in a real population.
"""

from __future__ import annotations

from sim_pipeline.sources.base import BOROUGHS

# ---------------------------------------------------------------------------------------------
# Names by origin: (male given names, female given names, family names), each space-separated.


def _w(text: str) -> tuple[str, ...]:
    return tuple(text.split())


ORIGINS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "british": (
        _w(
            "David John Michael James Paul Daniel Mark Christopher Richard Robert Andrew Thomas "
            "William Matthew Stephen Peter Jack Steven Anthony Joseph Samuel Benjamin Lee Gary "
            "Kevin Jamie Ryan Adam Liam Luke Nathan Craig Darren Wayne Dean Scott Alexander "
            "Edward Charles Harry George Oliver Callum Connor Lewis Jake Kieran Alfie Charlie "
            "Henry Nicholas Jonathan Simon Martin Ian Neil Graham Keith Colin Brian Philip Terry "
            "Shaun Carl Stuart Aaron Jordan Bradley Reece Joshua Ashley Ben"
        ),
        _w(
            "Sarah Emma Laura Rebecca Lisa Claire Nicola Michelle Hannah Amy Karen Elizabeth "
            "Jessica Sophie Charlotte Lucy Katie Lauren Chloe Emily Samantha Victoria Helen "
            "Rachel Susan Joanne Kelly Gemma Stacey Danielle Jennifer Catherine Margaret "
            "Patricia Deborah Julie Tracey Natalie Zoe Abigail Ellie Jade Olivia Amelia Megan "
            "Louise Kirsty Leanne Donna Jane Alison Carol Sharon Angela Dawn Amanda Kerry Holly "
            "Georgia Bethany Grace Paige Jodie Naomi Kathryn"
        ),
        _w(
            "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts "
            "Robinson Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke "
            "Jackson Wood Turner Martin Cooper Hill Ward Morris Moore Clark Lee King Baker "
            "Harrison Morgan Allen James Scott Phillips Watson Davis Parker Price Bennett Young "
            "Griffiths Mitchell Kelly Cook Carter Richardson Bailey Collins Bell Shaw Murphy "
            "Miller Cox Richards Marshall Anderson Simpson Ellis Adams Wilkinson Foster Chapman "
            "Powell Webb Rogers Gray Mason Hunt Campbell Matthews Owen Palmer Holmes Mills Barnes "
            "Knight Lloyd Butler Russell Barker Fisher Stevens Jenkins Murray Dixon Harvey Graham "
            "Pearson Fletcher Walsh Gibson Howard Andrews Stewart Elliott Reynolds Saunders Payne "
            "Fox Ford Pearce Day Brooks West Lawrence Cole Atkinson Bradley Spencer Dawson Ball "
            "Burton O'Brien Watts Rose Booth Perry Ryan Grant Wells Armstrong Francis Rees Hayes "
            "Hart Hudson Newman Barrett Webster Hunter Gregory Carr Lowe Page Marsh Riley Dunn "
            "Woods Parsons Berry Stone Reid Holland Hawkins Harding Porter Robertson Newton "
            "Oliver Reed Kennedy Williamson Bird Gardner Dean Lane Cooke Bates Henderson Parry "
            "Burgess Bishop Walton Burns Nicholson Shepherd Ross Cross Long Freeman Warren "
            "Nicholls Hamilton Sutton Yates Hodgson Robson Curtis Hopkins Harper Coleman Watkins "
            "Moss Chambers Griffin Sharp Hardy Wheeler Potter Osborne Johnston Gordon Wallace "
            "Jordan Hutchinson Rowe May Pritchard Gilbert Willis Read Miles Stevenson Hammond "
            "Arnold Walters Hewitt Barber Nelson Slater Austin Whitehead Mann Frost Lambert Blake "
            "Goodwin Barton Woodward Barnett Baxter Clayton Nash Greenwood Jennings Holt Kemp "
            "Poole Bond Stokes Tucker Fowler Heath Norman Middleton Lawson Banks French Stanley "
            "Jarvis Gibbs Hayward Farmer Dennis Hicks Hooper Fuller Smith-Jones"
        ),
    ),
    "irish": (
        _w("Patrick Sean Declan Ciaran Niall Conor Aidan Eoin Kevin Brendan Colm Padraig"),
        _w("Siobhan Niamh Aoife Roisin Ciara Mairead Orla Bridget Mary Sinead Grainne Deirdre"),
        _w(
            "Murphy Kelly O'Sullivan Walsh O'Brien Byrne Ryan O'Connor O'Neill Doyle McCarthy "
            "Gallagher Doherty Kennedy Lynch Quinn Brennan Fitzgerald Donnelly Nolan Keane "
            "Flanagan McLaughlin Duffy Kavanagh Brady Sweeney Maguire"
        ),
    ),
    "polish": (
        _w("Piotr Krzysztof Tomasz Marek Pawel Michal Andrzej Jakub Lukasz Kamil Marcin Adam"),
        _w("Anna Katarzyna Agnieszka Magdalena Joanna Monika Ewa Karolina Marta Aleksandra"),
        _w(
            "Nowak Kowalski Wisniewski Wojcik Kowalczyk Kaminski Lewandowski Zielinski "
            "Szymanski Wozniak Dabrowski Kozlowski Jankowski Mazur Kwiatkowski"
        ),
    ),
    "portuguese": (
        _w("Joao Pedro Tiago Rui Miguel Carlos Jose Antonio Bruno Ricardo"),
        _w("Ana Maria Sofia Ines Beatriz Catarina Mariana Joana Rita Sara"),
        _w("Silva Santos Ferreira Pereira Oliveira Costa Rodrigues Martins Sousa Fernandes Gomes"),
    ),
    "romanian": (
        _w("Andrei Ionut Mihai Alexandru Florin Gabriel Stefan Cristian Adrian Vasile"),
        _w("Ioana Elena Andreea Maria Alexandra Mihaela Cristina Gabriela Diana Roxana"),
        _w("Popescu Ionescu Popa Dumitru Stan Stoica Gheorghe Rusu Munteanu Constantin Matei"),
    ),
    "southern_european": (
        _w("Marco Giuseppe Luca Francesco Nikolaos Dimitrios Georgios Antonio Carlos Javier"),
        _w("Giulia Francesca Chiara Maria Eleni Katerina Sofia Lucia Carmen Elena"),
        _w(
            "Rossi Russo Ferrari Esposito Bianchi Romano Papadopoulos Georgiou Christodoulou "
            "Garcia Martinez Lopez Fernandez Gonzalez"
        ),
    ),
    "turkish": (
        _w("Mehmet Mustafa Ahmet Hasan Emre Murat Ali Huseyin Ibrahim Kemal Serkan Osman"),
        _w("Ayse Fatma Elif Zeynep Emine Hatice Merve Sevgi Leyla Derya Gulsen"),
        _w("Yilmaz Kaya Demir Sahin Celik Ozturk Aydin Arslan Dogan Kilic Aslan Cetin Kurt"),
    ),
    "indian": (
        _w(
            "Arjun Rahul Amit Sanjay Rajesh Vikram Ravi Anil Sunil Deepak Gurpreet Jaswinder "
            "Harjit Manish Nikhil Rohan Vijay Ashok Dinesh Mahesh Suresh Krishna"
        ),
        _w(
            "Priya Anjali Pooja Sunita Neha Kavita Deepa Meera Asha Rani Gurpreet Harpreet "
            "Jaspreet Nisha Rekha Shilpa Divya Lakshmi Geeta Usha"
        ),
        _w(
            "Patel Shah Singh Sharma Gupta Kumar Mehta Joshi Desai Parekh Mistry Chauhan Gill "
            "Sandhu Dhillon Sidhu Bains Grewal Thakkar Modi Pandya Solanki Rana Varma"
        ),
    ),
    "pakistani": (
        _w(
            "Mohammed Muhammad Ahmed Ali Imran Usman Bilal Hamza Zain Abdul Tariq Faisal Shahid "
            "Rizwan Asif Mohammad Adnan Kamran Naveed Waqas Zeeshan Irfan"
        ),
        _w(
            "Fatima Ayesha Aisha Zainab Maryam Sana Amina Nadia Saima Shazia Hina Rukhsana "
            "Samina Nasreen Farah Sadia Iqra Mehwish"
        ),
        _w(
            "Khan Hussain Ahmed Ali Akhtar Iqbal Mahmood Rashid Aziz Malik Butt Qureshi Shah "
            "Chaudhry Raza Javed Anwar Bashir Riaz Sheikh"
        ),
    ),
    "bangladeshi": (
        _w(
            "Mohammed Abdul Rahim Kamal Shafiq Jamal Sabbir Shamim Mizanur Habibur Rafiq "
            "Mohammad Ashraf Nazrul Shahin"
        ),
        _w(
            "Nasima Rehana Shirin Taslima Salma Farzana Shapla Rokeya Jahanara Shahana Ruksana "
            "Fatema Sumaiya"
        ),
        _w("Rahman Miah Uddin Ahmed Islam Hoque Begum Khatun Chowdhury Alam Hossain Ali Khan"),
    ),
    "caribbean": (
        _w(
            "Marcus Dwayne Andre Tyrone Leon Delroy Winston Clive Errol Trevor Jermaine Kareem "
            "Devon Rohan Anthony Michael Junior Lloyd Desmond Everton Courtney Jason"
        ),
        _w(
            "Marcia Sharon Simone Jasmine Keisha Tanisha Shanice Paulette Beverley Yvonne Donna "
            "Natasha Chantelle Jacqueline Sandra Maxine Claudette Marlene Janice Kimberley"
        ),
        _w(
            "Campbell Brown Williams Thomas Clarke Francis Bailey Grant Morgan Reid Gordon Henry "
            "Robinson Stewart Lewis Powell Forbes Bennett Edwards Johnson Samuels Blackwood "
            "McKenzie Walters Gayle Anderson Spence Daley Morrison Thompson"
        ),
    ),
    "west_african": (
        _w(
            "Oluwaseun Olumide Chukwuemeka Emeka Chinedu Adebayo Babatunde Oluwafemi Tunde "
            "Kwame Kofi Kwabena Samuel Emmanuel Daniel David Michael Joseph Ibrahim Yaw Kwaku "
            "Segun Obinna Ifeanyi"
        ),
        _w(
            "Chioma Ngozi Funmilayo Folasade Adaeze Blessing Grace Esther Abena Akosua Ama Faith "
            "Precious Comfort Oluwakemi Yetunde Bukola Nneka Adwoa Gifty"
        ),
        _w(
            "Okafor Okonkwo Adeyemi Adebayo Oladipo Balogun Ogunleye Eze Nwosu Obi Mensah "
            "Boateng Owusu Asante Osei Appiah Darko Agyeman Adeleke Olawale Okoro Ibekwe Afolabi "
            "Ansah Addo"
        ),
    ),
    "somali": (
        _w("Abdi Abdullahi Mohamed Hassan Yusuf Ahmed Ali Omar Abdirahman Farah Mahad Liban"),
        _w("Fatima Hodan Amina Sahra Hawa Asha Nimco Faduma Ifrah Ayan Sagal Maryan"),
        _w("Abdi Mohamed Hassan Ali Farah Warsame Osman Yusuf Ibrahim Jama Hersi Nur Aden"),
    ),
    "chinese": (
        _w("Wei Jun Ming Hao Jian Kai Lei Tao Yong Chun Kwok Wing"),
        _w("Li Xiu Mei Yan Ling Hui Jing Fang Ying Xin Wai Lai"),
        _w("Chen Wang Li Zhang Liu Wong Chan Lam Cheung Ng Ho Lin Huang Yang Zhou Leung Tang"),
    ),
    "south_east_asian": (
        _w("Minh Thanh Tuan Duc Hung Sivakumar Kannan Rajan Suthan Jose Mark Paolo"),
        _w("Lan Linh Hoa Mai Thu Tharshini Lakshmi Kavitha Maricel Joy Cristina Rowena"),
        _w(
            "Nguyen Tran Pham Le Hoang Vu Selvarajah Rajendran Kanagaratnam Sivakumar "
            "Tharmalingam Reyes Cruz Santos Bautista Mendoza"
        ),
    ),
    "arab": (
        _w("Omar Karim Youssef Ali Ahmed Khalid Samir Tarek Hassan Walid Nabil Rami"),
        _w("Leila Yasmin Mariam Nour Rania Huda Salma Dina Lina Amal Rana Sara"),
        _w("Haddad Khalil Mansour Nasser Saleh Hamdan Aziz Darwish Habib Sabbagh Karam Ibrahim"),
    ),
    "latin_american": (
        _w("Carlos Luis Juan Jorge Andres Diego Felipe Santiago Alejandro Mateo"),
        _w("Maria Camila Valentina Daniela Paula Andrea Carolina Natalia Luisa Gabriela"),
        _w("Rodriguez Gomez Gonzalez Martinez Garcia Lopez Hernandez Sanchez Ramirez Torres"),
    ),
}

# MHSDS / ECDS ethnic category -> (population share, name origins to draw from).
# Shares are a rough south-London mix; codes follow the NHS Data Dictionary ETHNIC CATEGORY.
ETHNIC_MIX: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("A", 0.440, ("british",)),
    ("B", 0.020, ("irish",)),
    ("C", 0.120, ("polish", "portuguese", "romanian", "southern_european", "turkish")),
    ("D", 0.015, ("british", "caribbean")),
    ("E", 0.010, ("british", "west_african")),
    ("F", 0.010, ("british", "indian")),
    ("G", 0.015, ("british", "caribbean", "west_african", "arab")),
    ("H", 0.040, ("indian",)),
    ("J", 0.020, ("pakistani",)),
    ("K", 0.015, ("bangladeshi",)),
    ("L", 0.040, ("south_east_asian",)),
    ("M", 0.070, ("caribbean",)),
    ("N", 0.100, ("west_african", "somali")),
    ("P", 0.020, ("caribbean", "west_african")),
    ("R", 0.020, ("chinese",)),
    ("S", 0.030, ("arab", "turkish", "latin_american")),
    ("Z", 0.010, ("british", "west_african", "caribbean", "polish")),
    ("99", 0.005, ("british", "caribbean", "indian")),
)

# Officer-perceived ethnicity (Home Office s136 return style) by ethnic category.
PERCEIVED_ETHNICITY = {
    "A": "White", "B": "White", "C": "White", "D": "Black", "E": "Black", "F": "Asian",
    "G": "Other", "H": "Asian", "J": "Asian", "K": "Asian", "L": "Asian", "M": "Black",
    "N": "Black", "P": "Black", "R": "Other", "S": "Other", "Z": "Not stated", "99": "Not stated",
}  # fmt: skip

# Given-name variants seen in other agencies' records (nicknames and transliterations).
NICKNAMES: dict[str, tuple[str, ...]] = {
    "William": ("Bill", "Will", "Billy"),
    "Elizabeth": ("Liz", "Beth", "Lizzie"),
    "Mohammed": ("Mohammad", "Muhammad", "Mohamed"),
    "Muhammad": ("Mohammed", "Mohammad"),
    "Mohammad": ("Mohammed", "Muhammad"),
    "Mohamed": ("Mohammed", "Mohamud"),
    "Robert": ("Bob", "Rob", "Robbie"),
    "Richard": ("Rick", "Richie"),
    "James": ("Jim", "Jimmy", "Jamie"),
    "Michael": ("Mike", "Mick"),
    "Christopher": ("Chris",),
    "Matthew": ("Matt",),
    "Andrew": ("Andy", "Drew"),
    "Anthony": ("Tony", "Ant"),
    "Stephen": ("Steve",),
    "Steven": ("Steve",),
    "Daniel": ("Dan", "Danny"),
    "Thomas": ("Tom", "Tommy"),
    "Joseph": ("Joe",),
    "Samuel": ("Sam",),
    "Benjamin": ("Ben",),
    "Alexander": ("Alex",),
    "Edward": ("Ed", "Eddie", "Ted"),
    "Charles": ("Charlie",),
    "Henry": ("Harry",),
    "Peter": ("Pete",),
    "David": ("Dave",),
    "Nicholas": ("Nick",),
    "Jonathan": ("Jon",),
    "Patrick": ("Pat", "Paddy"),
    "Margaret": ("Maggie", "Peggy"),
    "Catherine": ("Kate", "Cathy"),
    "Jennifer": ("Jenny", "Jen"),
    "Rebecca": ("Becky", "Becca"),
    "Victoria": ("Vicky",),
    "Samantha": ("Sam", "Sammy"),
    "Jessica": ("Jess",),
    "Deborah": ("Debbie", "Debs"),
    "Susan": ("Sue",),
    "Patricia": ("Pat", "Trish"),
    "Natalie": ("Nat",),
    "Abigail": ("Abbie", "Abi"),
    "Nicola": ("Nicky",),
    "Kathryn": ("Kate", "Kathy"),
    "Oluwaseun": ("Seun",),
    "Oluwafemi": ("Femi",),
    "Olumide": ("Mide",),
    "Babatunde": ("Tunde",),
    "Chukwuemeka": ("Emeka",),
    "Funmilayo": ("Funmi",),
    "Folasade": ("Sade",),
    "Oluwakemi": ("Kemi",),
    "Abdullahi": ("Abdi",),
    "Abdirahman": ("Abdi",),
    "Krzysztof": ("Chris",),
    "Piotr": ("Peter",),
    "Pawel": ("Paul",),
    "Joao": ("John",),
    "Katarzyna": ("Kasia", "Kate"),
    "Agnieszka": ("Aga",),
    "Aleksandra": ("Ola",),
    "Giuseppe": ("Joe",),
    "Nikolaos": ("Nick",),
    "Dimitrios": ("Jim",),
    "Alexandru": ("Alex",),
    "Rajesh": ("Raj",),
    "Vikram": ("Vik",),
    "Sivakumar": ("Siva",),
    "Natasha": ("Tasha",),
    "Kimberley": ("Kim",),
    "Jacqueline": ("Jackie",),
    "Aisha": ("Ayesha",),
    "Ayesha": ("Aisha",),
    "Fatima": ("Fatma",),
    "Yusuf": ("Yousuf",),
}

# Outward postcode districts by borough (real districts; inward codes are synthetic).
BOROUGH_DISTRICTS: dict[str, tuple[str, ...]] = {
    "Greenwich": _w("SE10 SE18 SE7 SE9 SE3 SE2 SE28"),
    "Southwark": _w("SE1 SE5 SE15 SE16 SE17 SE22"),
    "Kingston": _w("KT1 KT2 KT3 KT5 KT6 KT9"),
    "Richmond": _w("TW1 TW9 TW10 TW11 TW12 SW14"),
    "Wandsworth": _w("SW11 SW12 SW15 SW17 SW18"),
    "Merton": _w("SW19 SW20 CR4 SM4"),
    "Lambeth": _w("SE11 SE27 SW2 SW4 SW8 SW9 SW16"),
    "Lewisham": _w("SE4 SE6 SE8 SE12 SE13 SE14 SE23 SE26"),
    "Croydon": _w("CR0 CR2 CR5 CR7 CR8 SE25"),
    "Sutton": _w("SM1 SM2 SM3 SM5 SM6"),
    "Bexley": _w("DA5 DA6 DA7 DA8 DA14 DA15 DA16"),
    "Bromley": _w("BR1 BR2 BR3 BR4 BR5 BR6 BR7"),
}
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
NO_FIXED_ABODE_POSTCODE = "ZZ99 3VZ"  # NHS pseudo-postcode for no fixed abode

# Mental-health trust (provider folder) by borough.
BOROUGH_TRUST: dict[str, str] = {
    "Southwark": "slam", "Lambeth": "slam", "Lewisham": "slam", "Croydon": "slam",
    "Greenwich": "oxleas", "Bexley": "oxleas", "Bromley": "oxleas",
    "Kingston": "swlstg", "Richmond": "swlstg", "Wandsworth": "swlstg", "Merton": "swlstg",
    "Sutton": "swlstg",
}  # fmt: skip

# Usual type 1 A&E (provider folder, weight) by borough; "others to nearest" of the five.
BOROUGH_AE: dict[str, tuple[tuple[str, float], ...]] = {
    "Greenwich": (("ae_rj2", 1.0),),
    "Southwark": (("ae_rjz", 0.55), ("ae_rj1", 0.45)),
    "Lambeth": (("ae_rj1", 1.0),),
    "Lewisham": (("ae_rj2", 1.0),),
    "Kingston": (("ae_rax", 1.0),),
    "Richmond": (("ae_rax", 1.0),),
    "Wandsworth": (("ae_rj7", 1.0),),
    "Merton": (("ae_rj7", 1.0),),
    "Croydon": (("ae_rj7", 0.6), ("ae_rjz", 0.4)),
    "Sutton": (("ae_rj7", 1.0),),
    "Bexley": (("ae_rj2", 1.0),),
    "Bromley": (("ae_rjz", 1.0),),  # Princess Royal University Hospital is part of King's (RJZ)
}

# Programme go-live month by borough (seed review): four in January 2018, two in November 2018.
PROGRAMME_GO_LIVE: dict[str, str] = {
    "Greenwich": "2018-01",
    "Southwark": "2018-01",
    "Kingston": "2018-01",
    "Richmond": "2018-01",
    "Wandsworth": "2018-11",
    "Merton": "2018-11",
}
PROGRAMME_LAST_ALLOCATION = "2020-12"
# How the 108 allocations split across the six boroughs (earlier, larger boroughs take more).
PROGRAMME_BOROUGH_COUNTS: dict[str, int] = {
    "Greenwich": 22,
    "Southwark": 24,
    "Kingston": 15,
    "Richmond": 13,
    "Wandsworth": 19,
    "Merton": 15,
}

assert set(BOROUGH_DISTRICTS) == set(BOROUGHS) == set(BOROUGH_TRUST) == set(BOROUGH_AE)
assert abs(sum(share for _, share, _ in ETHNIC_MIX) - 1.0) < 1e-9
